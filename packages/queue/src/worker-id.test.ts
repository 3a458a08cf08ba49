import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRedis, waitForRedis } from './connection.js';
import { REDIS_URL, useRedis } from './testing/redis.js';
import { WorkerIdClaim, type WorkerIdClaimOptions, WorkerIdTakenError } from './worker-id.js';
import { WorkerKeys, WorkerRegistry } from './workers.js';

const TTL_MS = 60_000;
const { redis, prefix } = useRedis('test-wid');
const registry = new WorkerRegistry(redis, prefix);

const id = () => `w-${randomUUID().slice(0, 8)}`;
const claim = (workerId: string, pid = 100, host = 'host-a', extra: Partial<WorkerIdClaimOptions> = {}) =>
  WorkerIdClaim.acquire(redis, prefix, workerId, { host, pid, ttlMs: TTL_MS, ...extra });

/** A live holder as a worker is one: it beats into the registry and renews its claim, every `everyMs`. */
function keepAlive(workerId: string, holder: { host: string; pid: number }, c?: WorkerIdClaim, everyMs = 100) {
  const beat = () =>
    registry.beat({ id: workerId, ...holder, startedAt: new Date().toISOString(), running: [] }, 60_000);
  const timer = setInterval(() => void Promise.all([beat(), c?.renew()]), everyMs);
  return {
    ready: beat(),
    stop: async () => {
      clearInterval(timer);
      await registry.remove(workerId);
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<WorkerIdTakenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkerIdTakenError);
  return err as WorkerIdTakenError;
}

describe('WorkerIdClaim', () => {
  it('refuses a held id whose holder beats, naming WORKER_ID and the holder', async () => {
    const workerId = id();
    const first = await claim(workerId, 4242, 'host-a');
    const alive = keepAlive(workerId, { host: 'host-a', pid: 4242 }, first);
    await alive.ready;
    try {
      const err = await refusal(claim(workerId, 7, 'host-b'));
      expect(err.workerId).toBe(workerId);
      expect(err.holder).toMatchObject({ host: 'host-a', pid: 4242 });
      expect(err.message).toContain(`WORKER_ID=${workerId}`);
      expect(err.message).toMatch(/host host-a, pid 4242, last beat \d+\.\d s ago/);
      expect(await first.renew()).toBe('held');
    } finally {
      await alive.stop();
      await first.release();
    }
  });

  it('refuses a held id whose holder has not beaten yet but renews its claim past its TTL', async () => {
    const workerId = id();
    const first = await claim(workerId, 5, 'host-a', { ttlMs: 1_500 });
    const renewing = setInterval(() => void first.renew(), 100);
    try {
      const err = await refusal(claim(workerId, 6, 'host-b', { ttlMs: 1_500 }));
      expect(err.message).toMatch(/host host-a, pid 5, no beat yet, claimed \d+\.\d s ago/);
    } finally {
      clearInterval(renewing);
      await first.release();
    }
  });

  it('lets exactly one of many processes claiming one id at once through', async () => {
    const workerId = id();
    const connections = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = createRedis(REDIS_URL, 'worker');
        await waitForRedis(c, REDIS_URL);
        return c;
      }),
    );
    let renewing: ReturnType<typeof setInterval> | undefined;
    try {
      const results = await Promise.allSettled(
        connections.map(async (c, i) => {
          const won = await WorkerIdClaim.acquire(c, prefix, workerId, { host: 'h', pid: i, ttlMs: 2_000 });
          // The winner goes on as a worker does: renewing with every beat.
          renewing = setInterval(() => void won.renew(), 100);
          return won;
        }),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(refused).toHaveLength(7);
      for (const r of refused) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(WorkerIdTakenError);
      clearInterval(renewing);
      await (won[0] as PromiseFulfilledResult<WorkerIdClaim>).value.release();
    } finally {
      clearInterval(renewing);
      await Promise.all(connections.map((c) => c.quit()));
    }
  });

  it('refuses an id a live worker beats for without a claim, and leaves no claim behind', async () => {
    const workerId = id();
    const alive = keepAlive(workerId, { host: 'old-host', pid: 9 });
    await alive.ready;
    try {
      const err = await refusal(claim(workerId));
      expect(err.holder).toMatchObject({ host: 'old-host', pid: 9 });
      expect(await redis.exists(`${prefix}:worker:${workerId}:claim`)).toBe(0);
    } finally {
      await alive.stop();
    }
  });

  it('takes over from a holder that died without releasing: its claim lapses and its beat goes stale', async () => {
    const workerId = id();
    // As kill -9 leaves it: a claim nobody renews, a last beat that stays where it was.
    await claim(workerId, 31, 'host-a', { ttlMs: 400 });
    await registry.beat(
      { id: workerId, host: 'host-a', pid: 31, startedAt: new Date().toISOString(), running: [] },
      60_000,
    );
    // judgeMs well past the lapse, so a slow round trip on a loaded machine cannot end the watch first.
    const restarted = await claim(workerId, 32, 'host-a', { ttlMs: 400, judgeMs: 5_000 });
    expect(await redis.get(`${prefix}:worker:${workerId}:claim`)).toContain('"pid":32');
    await restarted.release();
    await registry.remove(workerId);
  });

  it('takes an id at once when its last beat is older than liveMs', async () => {
    const workerId = id();
    await registry.beat(
      { id: workerId, host: 'dead-host', pid: 9, startedAt: new Date().toISOString(), running: [] },
      60_000,
    );
    await redis.zadd(new WorkerKeys(prefix).workers(), Date.now() - 10_000, workerId);
    const c = await claim(workerId, 100, 'host-a', { liveMs: 5_000, judgeMs: 0 });
    await c.release();
    await registry.remove(workerId);
  });

  it('is free again after release, and sets a TTL so a dead holder frees it by itself', async () => {
    const workerId = id();
    const first = await claim(workerId);
    const ttl = await redis.pttl(`${prefix}:worker:${workerId}:claim`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_MS);
    await first.release();
    const second = await claim(workerId, 101, 'host-a', { judgeMs: 0 });
    await second.release();
  });

  it('renews its own claim, re-takes a lapsed one, and reports one taken by another as lost', async () => {
    const workerId = id();
    const key = `${prefix}:worker:${workerId}:claim`;
    const mine = await claim(workerId);
    expect(await mine.renew()).toBe('held');
    await redis.del(key);
    expect(await mine.renew()).toBe('reclaimed');
    expect(await redis.exists(key)).toBe(1);
    await redis.del(key);
    const other = await claim(workerId, 202, 'host-b');
    expect(await mine.renew()).toBe('lost');
    expect(await mine.currentHolder()).toMatchObject({ host: 'host-b', pid: 202 });
    // Releasing a claim another process holds now leaves that claim alone.
    await mine.release();
    expect(await other.renew()).toBe('held');
    await other.release();
    expect(await mine.currentHolder()).toBeUndefined();
  });
});
