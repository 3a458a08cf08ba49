import type { Job } from 'bullmq';
import type { TaskFence } from './store/fence.js';

/**
 * The Redis key of a job's lock (`<prefix>:<queue>:<jobId>:lock`), which holds the lock token of
 * the run processing the job. BullMQ offers no public API for it: `job.extendLock` renews a lock
 * but cannot take part in a script of ours, and the fence must check the lock and write in one
 * step. So this is the one place that knows BullMQ's key layout; `bullmq-internals.test.ts`
 * locks a job with a real Worker and fails if the layout changes.
 */
export function jobLockKey(job: Pick<Job, 'queueQualifiedName' | 'id'>): string {
  if (!job.id) throw new Error('a job without an id has no lock');
  return `${jobLockKeyPrefix(job.queueQualifiedName)}${job.id}:lock`;
}

/** What a job's lock key starts with (`<prefix>:<queue>:`), for a script that checks the locks of many jobs by id. */
export function jobLockKeyPrefix(queueQualifiedName: string): string {
  return `${queueQualifiedName}:`;
}

/** The fence of a task job being processed: its lock key and this run's token. */
export function taskFence(job: Job): TaskFence {
  if (!job.token || !job.id)
    throw new Error(`task job ${job.id ?? '?'} has no lock token: it is not being processed by a Worker`);
  return { lockKey: jobLockKey(job), token: job.token };
}

/**
 * The keys of a queue's waiting jobs: the plain list, the prioritized set and the delayed set.
 * A script that must know whether anything waits (without a round trip per key) reads them.
 */
export function waitingKeys(prefix: string, queue: string): { wait: string; prioritized: string; delayed: string } {
  const base = `${prefix}:${queue}`;
  return { wait: `${base}:wait`, prioritized: `${base}:prioritized`, delayed: `${base}:delayed` };
}

/** The highest job priority BullMQ accepts (`PRIORITY_LIMIT`, 2^21 - 1). */
export const MAX_JOB_PRIORITY = 2 ** 21 - 1;
