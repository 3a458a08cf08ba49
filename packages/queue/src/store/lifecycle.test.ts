import { randomUUID } from 'node:crypto';
import { FINAL_STATUSES, type TaskEvent, type TaskStatus } from '@research/contracts';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type Redis, waitForRedis } from '../connection.js';
import { WEBHOOK_QUEUE } from '../names.js';
import { TaskStore } from '../task-store.js';
import { TRANSITIONS, type Transition } from './lifecycle.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `{lifecycle-${randomUUID().slice(0, 8)}}`;
/** Three writers on three connections, so their commands interleave in Redis as separate processes' would. */
let api: TaskStore;
let worker: TaskStore;
let reaper: TaskStore;
const connections: Redis[] = [];

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    const c = createRedis(url, 'worker', { lazyConnect: false });
    await waitForRedis(c, url);
    connections.push(c);
  }
  [api, worker, reaper] = connections.map((c) => new TaskStore(c, prefix, { retentionSeconds: 60 })) as [
    TaskStore,
    TaskStore,
    TaskStore,
  ];
});

afterAll(async () => {
  await Promise.all([api, worker, reaper].map((s) => s?.close()));
  const [c] = connections;
  const keys = c ? await c.keys(`${prefix}*`) : [];
  for (let i = 0; i < keys.length; i += 500) await c?.del(...keys.slice(i, i + 500));
  await Promise.all(connections.map((c) => c.quit()));
});

const newTask = async (): Promise<string> => {
  const id = `t-${randomUUID()}`;
  await api.lifecycle.create({ id, request: { prompt: 'race' }, createdAt: new Date().toISOString(), maxSteps: 5 });
  return id;
};

const statusEvents = async (id: string): Promise<TaskStatus[]> =>
  (await api.events.read(id, '-', 5_000))
    .map((e) => e.event)
    .filter((e): e is Extract<TaskEvent, { type: 'status' }> => e.type === 'status')
    .map((e) => e.status);

/** A few round trips on the writer's own connection, so the racers start at varied offsets. */
const jitter = async (store: TaskStore, id: string, n: number) => {
  for (let i = 0; i < n; i++) await store.lifecycle.status(id);
};

describe('task transitions', () => {
  it('follow the table: queued → running → completed | failed | cancelled; a final status never changes', async () => {
    const id = await newTask();
    expect(await worker.lifecycle.transition(id, 'completed')).toEqual({ ok: false, status: 'queued' });
    expect(await worker.lifecycle.start(id, { workerId: 'w1' })).toMatchObject({ ok: true, status: 'running' });
    // A resume on another worker.
    expect(await worker.lifecycle.start(id, { workerId: 'w2' })).toMatchObject({ ok: true, status: 'running' });
    expect(await worker.lifecycle.transition(id, 'completed', { result: { summary: 's', files: [] } })).toEqual({
      ok: true,
      status: 'completed',
    });
    for (const to of ['running', 'failed', 'cancelled', 'completed', 'queued'] as const)
      expect(await api.lifecycle.transition(id, to)).toEqual({ ok: false, status: 'completed' });
    expect(await statusEvents(id)).toEqual(['queued', 'running', 'running', 'completed']);
    const view = await api.records.view(id);
    expect(view).toMatchObject({ status: 'completed', workerId: 'w2', result: { summary: 's' } });
    expect(view?.finishedAt).toBeDefined();
    for (const final of FINAL_STATUSES) expect(TRANSITIONS[final]).toEqual([]);
  });

  it('refuse a task without a record, writing nothing', async () => {
    const id = `t-${randomUUID()}`;
    expect(await worker.lifecycle.start(id, { workerId: 'w1' })).toEqual({ ok: false, status: undefined });
    expect(await api.records.exists(id)).toBe(false);
    expect(await statusEvents(id)).toEqual([]);
  });

  it('tell the later writer which status won: a worker starting a task cancelled meanwhile, a cancel after completion', async () => {
    const cancelledFirst = await newTask();
    expect(await api.lifecycle.transition(cancelledFirst, 'cancelled')).toMatchObject({ ok: true });
    expect(await worker.lifecycle.start(cancelledFirst, { workerId: 'w1' })).toEqual({
      ok: false,
      status: 'cancelled',
    });

    const completedFirst = await newTask();
    await worker.lifecycle.start(completedFirst, { workerId: 'w1' });
    await worker.lifecycle.transition(completedFirst, 'completed');
    expect(await api.lifecycle.transition(completedFirst, 'cancelled')).toEqual({ ok: false, status: 'completed' });
    expect(await statusEvents(completedFirst)).toEqual(['queued', 'running', 'completed']);
  });

  /**
   * The worker starts and completes the task, the API cancels it (as `POST /cancel` does: the
   * guarded transition, else the flag for the running task), and the final-failure bookkeeping of
   * another worker fails it — all at once, at varied offsets, on three connections.
   */
  it('race cancel, completion and failure 600 times: always exactly one final status, and the stream ends with it', async () => {
    const RUNS = 600;
    const BATCH = 50;
    const won: Record<string, number> = {};
    const finals = async () => {
      const c = await api.stats.counters();
      return (c.completed ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0);
    };
    const finalsBefore = await finals();
    for (let batch = 0; batch < RUNS / BATCH; batch++) {
      await Promise.all(
        Array.from({ length: BATCH }, async (_, i) => {
          const id = await newTask();
          const offset = (batch * BATCH + i) % 4;
          const results: Transition[] = [];
          await Promise.all([
            (async () => {
              await jitter(worker, id, offset);
              const started = await worker.lifecycle.start(id, { workerId: 'w1' });
              if (!started.ok) return;
              results.push(await worker.lifecycle.transition(id, 'completed', { result: { summary: 's', files: [] } }));
            })(),
            (async () => {
              await jitter(api, id, (offset + 1) % 4);
              const cancelled = await api.lifecycle.transition(id, 'cancelled', {
                error: { code: 'cancelled', message: 'cancelled by request' },
              });
              results.push(cancelled);
              if (!cancelled.ok && cancelled.status === 'running') await api.cancels.request(id);
            })(),
            (async () => {
              await jitter(reaper, id, (offset + 2) % 4);
              results.push(
                await reaper.lifecycle.transition(id, 'failed', { error: { code: 'internal', message: 'gave up' } }),
              );
            })(),
          ]);
          const status = await api.lifecycle.status(id);
          expect(status && FINAL_STATUSES.includes(status)).toBe(true);
          // Exactly one writer's final transition was applied: the one whose status the task has.
          const applied = results.filter((r) => r.ok);
          expect(applied).toEqual([{ ok: true, status }]);
          const events = await statusEvents(id);
          expect(events.filter((s) => FINAL_STATUSES.includes(s))).toEqual([status]);
          expect(events.at(-1)).toBe(status);
          won[status as string] = (won[status as string] ?? 0) + 1;
        }),
      );
    }
    console.log(`lifecycle race: ${RUNS} runs, final status won by ${JSON.stringify(won)}`);
    expect(Object.values(won).reduce((a, b) => a + b, 0)).toBe(RUNS);
    // The counters saw one final status per task too.
    expect((await finals()) - finalsBefore).toBe(RUNS);
  });
});

describe('the webhook outbox', () => {
  const webhook = { url: 'https://hooks.example.test/research' };
  const withWebhook = async (): Promise<string> => {
    const id = `t-${randomUUID()}`;
    const createdAt = new Date().toISOString();
    await api.lifecycle.create({ id, request: { prompt: 'hook' }, createdAt, maxSteps: 5, webhook });
    return id;
  };
  const outboxed = (id: string) => connections[0]!.zscore(`${prefix}:webhook-outbox`, id);
  const job = async (deliveryId: string) => {
    const queue = new Queue(WEBHOOK_QUEUE, { connection: connections[0]!, prefix });
    try {
      return await queue.getJob(deliveryId);
    } finally {
      await queue.close();
    }
  };

  it('a final status queues its delivery and leaves no outbox entry', async () => {
    const id = await withWebhook();
    await worker.lifecycle.start(id, { workerId: 'w1' });
    expect(await worker.lifecycle.transition(id, 'completed')).toMatchObject({ ok: true });
    expect(await outboxed(id)).toBeNull();
    expect((await api.webhooks.list(id)).map((d) => [d.id, d.status])).toEqual([[`${id}-completed`, 'queued']]);
    expect(await job(`${id}-completed`)).toBeDefined();
  });

  it('a writer killed after the status, before the delivery: recover queues it, once', async () => {
    const id = await withWebhook();
    const dying = new TaskStore(connections[1]!, prefix, { retentionSeconds: 60 });
    // The process dies between the status write and the queueing of its delivery.
    dying.webhooks.final = () => Promise.reject(new Error('killed'));
    await expect(dying.lifecycle.transition(id, 'cancelled')).rejects.toThrow('killed');
    expect(await api.lifecycle.status(id)).toBe('cancelled');
    expect(await outboxed(id)).not.toBeNull();
    expect(await api.webhooks.list(id)).toEqual([]);

    // Not before the grace period: the writer may still be about to queue it.
    expect(await reaper.webhooks.recover(60_000)).toBe(0);
    expect(await reaper.webhooks.recover(0)).toBe(1);
    expect(await outboxed(id)).toBeNull();
    expect((await api.webhooks.list(id)).map((d) => [d.id, d.type, d.status])).toEqual([
      [`${id}-cancelled`, 'task.cancelled', 'queued'],
    ]);
    expect((await job(`${id}-cancelled`))?.data).toMatchObject({ taskId: id, url: webhook.url, event: 'final' });
    expect(await reaper.webhooks.recover(0)).toBe(0);
    await dying.close();
  });
});
