import { randomBytes } from 'node:crypto';
import { createRedis, waitForRedis, type Redis } from '@research/queue';
import { REDIS_URL } from './services.js';

/**
 * A queue prefix of a test's own, hash-tagged like the production one (`{research}`) so a
 * Redis Cluster keeps its keys in one slot: `{<tag>-<8 hex>}`.
 */
export function testPrefix(tag: string): string {
  return `{${tag}-${randomBytes(4).toString('hex')}}`;
}

/** Deletes every key under `prefix` on this connection. */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    cursor = next;
    // Keys under one hash-tagged prefix share a slot, so one DEL may take them all, also on a Cluster.
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  } while (cursor !== '0');
}

/** {@link deletePrefix} on a connection of its own (for an `afterAll` that has none left). */
export async function cleanPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = createRedis(url, 'worker');
  try {
    await waitForRedis(redis, url);
    await deletePrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}
