import { API_COMMAND_TIMEOUT_MS, connectionUsable, failedForRedis, type Redis } from '@research/queue';
import { RedisUnavailableError } from './errors.js';

/**
 * Runs Redis work for a request: refuses at once when the connection is not ready (BullMQ would
 * otherwise wait for one that never comes), and turns a connection error or a command timeout
 * (the api connections time commands out after API_COMMAND_TIMEOUT_MS) into 503
 * `redis_unavailable`. Other errors pass through.
 */
export async function guard<T>(redis: Redis, work: () => Promise<T>, timeoutMs?: number): Promise<T> {
  if (!connectionUsable(redis)) throw new RedisUnavailableError();
  let timer: NodeJS.Timeout | undefined;
  const started = performance.now();
  try {
    if (timeoutMs === undefined) return await work();
    // A tighter bound than the connection's command timeout (readiness probes).
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RedisUnavailableError(`Redis did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return await Promise.race([work(), timeout]);
  } catch (err) {
    if (err instanceof RedisUnavailableError) throw err;
    if (failedForRedis(err, redis, performance.now() - started, API_COMMAND_TIMEOUT_MS))
      throw new RedisUnavailableError();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
