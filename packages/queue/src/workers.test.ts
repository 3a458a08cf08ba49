import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRedis, waitForRedis } from './connection.js';
import { stepQueueName, stepQueueOwner } from './names.js';
import { REDIS_URL, useRedis } from './testing/redis.js';
import { DeathWatch, WorkerRegistry } from './workers.js';

const STALE_MS = 400;
const { redis, prefix } = useRedis('test');
const registry = new WorkerRegistry(redis, prefix);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A worker whose last beat was `agoMs` ago, as Redis holds it after an outage. */
const beatAgo = (id: string, agoMs: number) => redis.zadd(`${prefix}:workers`, Date.now() - agoMs, id);

describe('DeathWatch', () => {
  it('judges nobody dead until it has been connected for the stale period itself', async () => {
    const watch = new DeathWatch(registry, redis, STALE_MS);
    try {
      await beatAgo('silent', 10_000);
      expect(watch.canJudge()).toBe(false);
      expect(await watch.isDead('silent')).toBe(false);
      expect(await watch.dead()).toEqual([]);
      await sleep(STALE_MS + 50);
      expect(watch.canJudge()).toBe(true);
      expect(await watch.isDead('silent')).toBe(true);
      expect(await watch.dead()).toContain('silent');
    } finally {
      watch.close();
    }
  });

  it('keeps a worker that beat within the stale period alive; an unregistered one is dead', async () => {
    const watch = new DeathWatch(registry, redis, STALE_MS);
    try {
      await sleep(STALE_MS + 50);
      await registry.beat(
        { id: 'live', host: 'h', pid: 1, startedAt: new Date().toISOString(), running: [] },
        STALE_MS,
      );
      expect(await watch.isDead('live')).toBe(false);
      expect(await watch.dead()).not.toContain('live');
      expect(await watch.isDead('never-registered')).toBe(true);
      await registry.remove('live');
      expect(await watch.isDead('live')).toBe(true);
    } finally {
      watch.close();
    }
  });

  it('after a reconnect, waits the stale period again before judging: a live worker gets the time to beat', async () => {
    const connection = createRedis(REDIS_URL, 'worker');
    await waitForRedis(connection, REDIS_URL);
    const watch = new DeathWatch(new WorkerRegistry(connection, prefix), connection, STALE_MS);
    try {
      await sleep(STALE_MS + 50);
      await beatAgo('back-from-outage', 10_000);
      expect(await watch.isDead('back-from-outage')).toBe(true);
      // The connection drops and comes back, as when Redis restarts.
      const ready = new Promise((r) => connection.once('ready', r));
      connection.disconnect(true);
      await ready;
      expect(watch.canJudge()).toBe(false);
      expect(await watch.isDead('back-from-outage')).toBe(false);
      expect(await watch.dead()).toEqual([]);
      // The worker beats after its own reconnect, and stays alive once judging resumes.
      await registry.beat(
        { id: 'back-from-outage', host: 'h', pid: 1, startedAt: new Date().toISOString(), running: [] },
        60_000,
      );
      await sleep(STALE_MS + 50);
      await registry.beat(
        { id: 'back-from-outage', host: 'h', pid: 1, startedAt: new Date().toISOString(), running: [] },
        60_000,
      );
      expect(watch.canJudge()).toBe(true);
      expect(await watch.isDead('back-from-outage')).toBe(false);
    } finally {
      watch.close();
      await connection.quit();
    }
  });
});

describe('step queue names', () => {
  it('name their worker, and only step queues have one', () => {
    expect(stepQueueOwner(stepQueueName('w-1.a'))).toBe('w-1.a');
    expect(() => stepQueueOwner('agent')).toThrow(/not a step queue/);
  });
});

describe('WorkerRegistry.isLive', () => {
  it('a recent beat or a held WORKER_ID claim is alive; a stale beat without a claim, or nothing, is not', async () => {
    const id = `live-${randomUUID().slice(0, 8)}`;
    expect(await registry.isLive(id, STALE_MS)).toBe(false);
    await beatAgo(id, 10);
    expect(await registry.isLive(id, STALE_MS)).toBe(true);
    await beatAgo(id, STALE_MS * 3);
    expect(await registry.isLive(id, STALE_MS)).toBe(false);
    await redis.set(`${prefix}:worker:${id}:claim`, '{}', 'PX', 5_000);
    expect(await registry.isLive(id, STALE_MS)).toBe(true);
  });
});
