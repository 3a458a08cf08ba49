import { type Job, type Queue, Worker } from 'bullmq';
import type { Logger } from '@research/config';
import {
  EXPIRY_QUEUE,
  ExpiryJobData,
  type QueuedQuota,
  type Redis,
  type TaskJobData,
  type TaskStore,
  expiryMessage,
  jobOptions,
  workerOptions,
} from '@research/queue';

/** The delayed check of a task with a `ttlSeconds`: it fires when the task's time to start is over. */
export function expiryJob(
  taskId: string,
  ttlSeconds: number,
  createdAt: string,
): { name: string; data: ExpiryJobData; opts: ReturnType<typeof jobOptions> } {
  const data: ExpiryJobData = { taskId, ttlSeconds };
  const delay = Math.max(0, Date.parse(createdAt) + ttlSeconds * 1_000 - Date.now());
  return { name: 'expire', data, opts: jobOptions('expiry', { jobId: taskId, delay }) };
}

export interface ExpirySweeperOptions {
  /** A connection of its own: the sweeper's Worker blocks on it. */
  connection: Redis;
  prefix: string;
  store: TaskStore;
  /** The `agent` queue, to take an expired task's job out of it. */
  queue: Queue<TaskJobData>;
  quota: QueuedQuota;
  logger: Logger;
  /** Checks run at once. Default: 4. */
  concurrency?: number;
}

/**
 * Runs the expiry checks, so that a task waiting in a backlog ends `failed` (`expired`) when its
 * `ttlSeconds` is over rather than when a worker finally reaches it. It lives in the API, which
 * every deployment runs, so tasks expire even while no worker is up; several API processes share
 * the checks through BullMQ. The check is the guarded transition from `queued` only: a task a
 * worker started meanwhile goes on, and a worker that takes an expired task's job finds it final.
 * Workers check the same deadline when they pick a task up, which covers a check that never ran.
 */
export class ExpirySweeper {
  private readonly worker: Worker;

  constructor(private readonly o: ExpirySweeperOptions) {
    this.worker = new Worker(
      EXPIRY_QUEUE,
      (job: Job) => this.check(job),
      workerOptions('expiry', { connection: o.connection, prefix: o.prefix, concurrency: o.concurrency ?? 4 }),
    );
    this.worker.on('error', (err) => o.logger.debug({ err: err.message }, 'expiry worker error'));
  }

  private async check(job: Job): Promise<string> {
    const { taskId, ttlSeconds } = ExpiryJobData.parse(job.data);
    const { store, queue, quota, logger } = this.o;
    const expired = await store.lifecycle.expire(taskId, expiryMessage(ttlSeconds));
    if (!expired.ok) return expired.status ?? 'gone';
    const tenant = await store.records.tenant(taskId);
    // 0 when a worker just took it: that worker finds the task final and leaves it.
    await queue.remove(taskId).catch((err: unknown) => logger.warn({ err, taskId }, 'could not remove an expired job'));
    if (tenant !== undefined) await quota.release(tenant, taskId);
    logger.info({ taskId, ttlSeconds }, 'task expired before it started');
    return 'expired';
  }

  async close(): Promise<void> {
    await this.worker.close();
  }
}
