import { type Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { JOBS, jobOptions, workerOptions } from './catalog.js';
import { asJobError, isFinalFailure, isRetryable } from './retry.js';
import { useRedis } from './testing/redis.js';

const { redis, prefix, connection, closeAfter } = useRedis('retry');
const queue = (name: string): Queue => closeAfter(new Queue(name, { connection: redis, prefix }));

/** Each `failed` event of a Worker on `name`, with what `isFinalFailure` said of it then. */
function failures(worker: Worker): { job: Job; err: Error; final: boolean }[] {
  const seen: { job: Job; err: Error; final: boolean }[] = [];
  worker.on('failed', (job, err) => {
    if (job) seen.push({ job, err, final: isFinalFailure(job) });
  });
  return seen;
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('retry classification', () => {
  it('is by type: UnrecoverableError and `retryable: false` do not retry, the rest does', () => {
    class Refused extends Error {
      readonly retryable = false;
    }
    class Flaky extends Error {
      readonly retryable = true;
    }
    expect(isRetryable(new UnrecoverableError('no'))).toBe(false);
    expect(isRetryable(new Refused('no'))).toBe(false);
    expect(isRetryable(new Flaky('again'))).toBe(true);
    expect(isRetryable(new Error('stalled more than allowable limit'))).toBe(true);
    expect(isRetryable('a string')).toBe(true);
    const mapped = asJobError(new Refused('bad path'));
    expect(mapped).toBeInstanceOf(UnrecoverableError);
    expect(mapped.message).toBe('bad path');
    expect(mapped.cause).toBeInstanceOf(Refused);
    const kept = new Flaky('again');
    expect(asJobError(kept)).toBe(kept);
  });

  it('compiles each kind’s policy into its job and Worker options', () => {
    for (const kind of ['task', 'step'] as const) {
      expect(jobOptions(kind)).toMatchObject({
        attempts: JOBS[kind].retry.attempts,
        backoff: JOBS[kind].retry.backoff,
      });
      expect(workerOptions(kind, { connection: redis, concurrency: 2 })).toEqual({
        connection: redis,
        concurrency: 2,
        maxStalledCount: JOBS[kind].retry.maxStalledCount,
      });
    }
    expect(jobOptions('step')).toMatchObject({ removeDependencyOnFailure: true });
    expect(jobOptions('step', { attempts: 1 }).attempts).toBe(1);
  });
});

describe('isFinalFailure, against a real Worker', () => {
  it('tells a failure BullMQ retries from the last one, and an unrecoverable one from both', async () => {
    const q = queue('attempts');
    const worker = new Worker(
      'attempts',
      async (job) => {
        throw job.data.fatal ? new UnrecoverableError('fatal') : new Error('flaky');
      },
      { connection: connection(), prefix },
    );
    closeAfter(worker);
    const seen = failures(worker);
    await q.add('x', { fatal: false }, { jobId: 'flaky', attempts: 2 });
    await q.add('x', { fatal: true }, { jobId: 'fatal', attempts: 5 });
    await until(() => seen.length === 3);
    const of = (id: string) => seen.filter((s) => s.job.id === id).map((s) => s.final);
    expect(of('flaky')).toEqual([false, true]);
    expect(of('fatal')).toEqual([true]);
  });

  it('sees a job that stalled more than maxStalledCount times as failed for good, without reading the message', async () => {
    const q = queue('stalls');
    await q.add('x', {}, { jobId: 'stalls', attempts: 5 });
    // A worker takes the job and dies: its lock is never renewed.
    const dead = new Worker('stalls', null, { connection: connection(), prefix, autorun: false, lockDuration: 300 });
    closeAfter(dead);
    expect((await dead.getNextJob('dead-token'))?.id).toBe('stalls');
    await new Promise((r) => setTimeout(r, 400));
    let ran = false;
    const worker = new Worker(
      'stalls',
      async () => {
        ran = true;
      },
      { connection: connection(), prefix, maxStalledCount: 0, stalledInterval: 200 },
    );
    closeAfter(worker);
    const seen = failures(worker);
    await until(() => seen.length === 1);
    expect(seen[0]?.final).toBe(true);
    expect(seen[0]?.job.stalledCounter).toBe(1);
    expect(ran).toBe(false);
    expect(await q.getJobState('stalls')).toBe('failed');
  });
});
