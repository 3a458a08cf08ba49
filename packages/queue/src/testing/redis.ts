/**
 * TEST HELPERS ONLY — not compiled into dist. The real Redis for this package's tests, one
 * queue prefix per test file.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { type CreateRedisOptions, createRedis, type Redis, waitForRedis } from '../connection.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Closable {
  close(): Promise<unknown>;
}

export interface RedisFixture {
  /** The file's connection: made at once so a test file can build its stores on it, connected before all. */
  readonly redis: Redis;
  /** The file's queue prefix, `{<tag>-<8 hex>}`. */
  readonly prefix: string;
  /** A further prefix of its own (a test that wants an empty queue); its keys go after all as well. */
  newPrefix(): string;
  /** A further connection (a BullMQ Worker blocks its own), with `options`, quit after all. */
  connection(options?: CreateRedisOptions): Redis;
  /** Closes `it` (a Queue, a Worker) after all, in reverse order, before the keys are deleted. */
  closeAfter<T extends Closable>(it: T): T;
}

/**
 * One connection and prefix for a test file. After all: what `closeAfter` was given is closed,
 * the further connections quit, every key under the prefixes deleted, and the connection quit.
 */
export function useRedis(tag: string): RedisFixture {
  const newTag = () => `{${tag}-${randomUUID().slice(0, 8)}}`;
  // Lazy, so that collecting the tests (`vitest list`) opens no connection.
  const redis = createRedis(REDIS_URL, 'worker', { lazyConnect: true });
  const prefixes = [newTag()];
  const connections: Redis[] = [];
  const closables: Closable[] = [];

  beforeAll(async () => {
    // waitForRedis says what to start when it fails; connect's own rejection would only repeat it.
    redis.connect().catch(() => undefined);
    await waitForRedis(redis, REDIS_URL);
  });

  afterAll(async () => {
    for (const c of closables.reverse()) await c.close();
    await Promise.all(connections.map((c) => c.quit()));
    for (const prefix of prefixes) {
      const keys = await redis.keys(`${prefix}*`);
      for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    }
    await redis.quit();
  });

  return {
    redis,
    prefix: prefixes[0] as string,
    newPrefix: () => {
      const prefix = newTag();
      prefixes.push(prefix);
      return prefix;
    },
    connection: (options) => {
      const c = createRedis(REDIS_URL, 'worker', options);
      connections.push(c);
      return c;
    },
    closeAfter: (it) => {
      closables.push(it);
      return it;
    },
  };
}
