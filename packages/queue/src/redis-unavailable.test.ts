import { type Redis as Standalone, ReplyError } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedis, type Redis } from './connection.js';
import { connectionUsable, failedForRedis, isRedisUnavailable } from './redis-unavailable.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// Nothing listens on port 1 of loopback: every connection attempt is refused at once.
const nowhere = 'redis://127.0.0.1:1';

async function failureOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('isRedisUnavailable / failedForRedis', () => {
  const opened: Redis[] = [];
  const open = (...args: Parameters<typeof createRedis>): Redis => {
    const r = createRedis(...args);
    r.on('error', () => {});
    opened.push(r);
    return r;
  };
  afterEach(() => {
    for (const r of opened.splice(0)) r.disconnect();
  });

  it('a request given up after the connection failed is unavailable, by its class', async () => {
    const redis = open(nowhere, 'worker', { maxRetriesPerRequest: 1 });
    const err = await failureOf(() => redis.get('k'));
    expect((err as Error).name).toBe('MaxRetriesPerRequestError');
    expect(isRedisUnavailable(err)).toBe(true);
  });

  it("an api connection's refusal while down is a plain Error, told by the connection's state", async () => {
    const redis = open(nowhere, 'api');
    const err = await failureOf(() => redis.get('k'));
    expect(isRedisUnavailable(err)).toBe(false);
    expect(redis.status).not.toBe('ready');
    expect(failedForRedis(err, redis, 0, 2_000)).toBe(true);
  });

  it('a command refused after the socket ended but before ioredis saw the close is unavailable', async () => {
    const redis = open(url, 'api');
    if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
    // The socket goes away; ioredis handles its close only on a later turn of the event loop.
    (redis as Standalone).stream.destroy();
    const err = await failureOf(() => redis.get('k'));
    expect(isRedisUnavailable(err)).toBe(false);
    expect(redis.status).toBe('ready');
    expect(connectionUsable(redis)).toBe(false);
    expect(failedForRedis(err, redis, 0, 2_000)).toBe(true);
  });

  it('a command error of a healthy server is not unavailability', async () => {
    const redis = open(url, 'api');
    if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
    const err = await failureOf(() => redis.call('NO-SUCH-COMMAND'));
    expect(err).toBeInstanceOf(ReplyError);
    expect(isRedisUnavailable(err)).toBe(false);
    expect(connectionUsable(redis)).toBe(true);
    expect(failedForRedis(err, redis, 1, 2_000)).toBe(false);
    // The same error once it took the whole command timeout counts as Redis's failure.
    expect(failedForRedis(err, redis, 2_000, 2_000)).toBe(true);
  });

  it("Redis's own codes for a server that cannot serve now are unavailable; others are not", () => {
    for (const reply of ['OOM command not allowed', 'LOADING Redis is loading', 'READONLY replica', 'CLUSTERDOWN down'])
      expect(isRedisUnavailable(new ReplyError(reply))).toBe(true);
    expect(isRedisUnavailable(new ReplyError('WRONGTYPE Operation against a key'))).toBe(false);
    expect(isRedisUnavailable(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRedisUnavailable(new Error('ECONNREFUSED in a message only'))).toBe(false);
    expect(isRedisUnavailable('ECONNREFUSED')).toBe(false);
  });
});
