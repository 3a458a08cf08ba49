import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { jobLockKey, MAX_JOB_PRIORITY, taskFence, waitingKeys } from './bullmq-internals.js';
import { createRedis } from './connection.js';
import { REDIS_URL, useRedis } from './testing/redis.js';

const { redis, prefix } = useRedis('bullmq-keys');

describe('BullMQ key layout', () => {
  it('the lock key we compute is the one a real Worker locks a job with, holding its token until the job completes', async () => {
    const queue = new Queue('locks', { connection: redis, prefix });
    const connection = createRedis(REDIS_URL, 'worker');
    const worker = new Worker('locks', null, { connection, prefix, autorun: false, lockDuration: 30_000 });
    try {
      await queue.add('x', {}, { jobId: 'job-1' });
      const token = `token-${randomUUID()}`;
      const job = await worker.getNextJob(token);
      expect(job?.id).toBe('job-1');
      expect(await redis.get(jobLockKey(job!))).toBe(token);
      expect(taskFence(job!)).toEqual({ lockKey: jobLockKey(job!), token });
      await job!.moveToCompleted('done', token, false);
      expect(await redis.exists(jobLockKey(job!))).toBe(0);
    } finally {
      await worker.close();
      await queue.close();
      await connection.quit();
    }
  });

  it('the waiting keys we compute hold a plain, a prioritized and a delayed job; the priority limit is the one BullMQ enforces', async () => {
    const queue = new Queue('waiting', { connection: redis, prefix });
    try {
      await queue.add('x', {}, { jobId: 'plain' });
      await queue.add('x', {}, { jobId: 'prio', priority: MAX_JOB_PRIORITY });
      await queue.add('x', {}, { jobId: 'later', delay: 60_000 });
      const keys = waitingKeys(prefix, 'waiting');
      expect(await redis.lrange(keys.wait, 0, -1)).toEqual(['plain']);
      expect(await redis.zrange(keys.prioritized, 0, -1)).toEqual(['prio']);
      expect(await redis.zrange(keys.delayed, 0, -1)).toEqual(['later']);
      await expect(queue.add('x', {}, { priority: MAX_JOB_PRIORITY + 1 })).rejects.toThrow(/Priority/);
    } finally {
      await queue.close();
    }
  });
});
