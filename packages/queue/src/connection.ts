import { Redis, type RedisOptions } from 'ioredis';

export type { Redis };

/**
 * `worker`: commands wait through a Redis outage (BullMQ requires `maxRetriesPerRequest: null`
 * for blocking connections) and resume by themselves.
 * `api`: commands fail at once while Redis is unreachable (no offline queue), so HTTP handlers
 * answer 503 quickly instead of hanging.
 */
export type ConnectionRole = 'worker' | 'api';

/** Longest one Redis command may take on an `api` connection. */
export const API_COMMAND_TIMEOUT_MS = 2_000;

export function createRedis(url: string, role: ConnectionRole, extra: RedisOptions = {}): Redis {
  const common: RedisOptions = {
    maxRetriesPerRequest: null,
    // Reconnect quickly but not in a tight loop: 50 ms, 100 ms, … capped at 2 s.
    retryStrategy: (times) => Math.min(times * 50, 2_000),
    connectionName: `research-${role}`,
  };
  // commandTimeout: a half-open socket fails a request after 2 s instead of hanging it; ioredis
  // does it per command, without a timer per call in our code.
  const api: RedisOptions = role === 'api' ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: API_COMMAND_TIMEOUT_MS } : {};
  return new Redis(url, { ...common, ...api, ...extra });
}

/** Resolves when the connection is ready, rejects after `timeoutMs` with a message saying what to start. */
export async function waitForRedis(redis: Redis, url: string, timeoutMs = 5_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not reachable at ${url} after ${timeoutMs} ms — start redis-server or set REDIS_URL`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}
