import type { Redis } from '@research/queue';
import { RedisUnavailableError, isRedisConnectionError } from './errors.js';

/**
 * Longest a single Redis call of a request may take. The api connection has no offline queue,
 * so while Redis is down calls fail at once; this bound covers the rest (a half-open socket,
 * BullMQ waiting for a connection that never became ready).
 */
export const REDIS_CALL_TIMEOUT_MS = 2_000;

/**
 * Runs Redis work for a request: refuses at once when the connection is not ready, and turns
 * a timeout or a connection error into 503 `redis_unavailable`. Other errors pass through.
 */
export async function guard<T>(redis: Redis, work: () => Promise<T>, timeoutMs = REDIS_CALL_TIMEOUT_MS): Promise<T> {
  if (redis.status !== 'ready') throw new RedisUnavailableError();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work(), timeout]);
  } catch (err) {
    if (isRedisConnectionError(err)) throw new RedisUnavailableError();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
