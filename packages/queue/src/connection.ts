import { Cluster, Redis as Standalone, type ClusterOptions, type RedisOptions } from 'ioredis';
import { redactUrl } from '@research/config';
import { defineLuaScripts } from './store/lua.js';

/** A connection to a single Redis or to a Redis Cluster: what `createRedis` returns. */
export type Redis = Standalone | Cluster;

/**
 * `worker`: commands wait through a Redis outage (BullMQ requires `maxRetriesPerRequest: null`
 * for blocking connections) and resume by themselves.
 * `api`: commands fail at once while Redis is unreachable (no offline queue), so HTTP handlers
 * answer 503 quickly instead of hanging.
 */
export type ConnectionRole = 'worker' | 'api';

export interface CreateRedisOptions extends RedisOptions {
  /**
   * The URL names one seed node of a Redis Cluster: returns an ioredis `Cluster`, which finds
   * the other nodes itself. Every key must then share one hash tag (`QUEUE_PREFIX={research}`).
   * Default: false.
   */
  cluster?: boolean;
  /**
   * Commands issued in the same turn of the event loop go out together, as one write and one
   * pipeline (ioredis `enableAutoPipelining`), in the order they were issued. A `multi()`
   * transaction is sent at once, ahead of calls still queued: on such a connection, what must
   * keep its place among other writes is a Lua script. Duplicates (`duplicateRedis`) never
   * batch. Default: false.
   */
  autoPipelining?: boolean;
}

/** Longest one Redis command may take on an `api` connection. */
export const API_COMMAND_TIMEOUT_MS = 2_000;

export function createRedis(
  url: string,
  role: ConnectionRole,
  { cluster = false, autoPipelining = false, ...extra }: CreateRedisOptions = {},
): Redis {
  const common: RedisOptions = {
    maxRetriesPerRequest: null,
    // Reconnect quickly but not in a tight loop: 50 ms, 100 ms, … capped at 2 s.
    retryStrategy: (times) => Math.min(times * 50, 2_000),
    connectionName: `research-${role}`,
  };
  // commandTimeout: a half-open socket fails a request after 2 s instead of hanging it; ioredis
  // does it per command, without a timer per call in our code.
  const api: RedisOptions =
    role === 'api'
      ? {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectTimeout: 2_000,
          commandTimeout: API_COMMAND_TIMEOUT_MS,
        }
      : {};
  if (!cluster)
    return withScripts(new Standalone(url, { ...common, ...api, ...extra, enableAutoPipelining: autoPipelining }));

  // ioredis owns a Cluster's node connections: it never reconnects one by itself (the Cluster
  // reconnects and refreshes its slots) and always gives it an offline queue, so these three
  // settings go on the Cluster; the rest apply to every node.
  const { retryStrategy, enableOfflineQueue, lazyConnect, ...node } = { ...common, ...api, ...extra };
  const options: ClusterOptions = {
    redisOptions: { ...seedCredentials(url), ...node },
    enableAutoPipelining: autoPipelining,
  };
  if (retryStrategy) options.clusterRetryStrategy = retryStrategy;
  if (enableOfflineQueue !== undefined) options.enableOfflineQueue = enableOfflineQueue;
  if (lazyConnect !== undefined) options.lazyConnect = lazyConnect;
  const { hostname, port } = new URL(url);
  return withScripts(new Cluster([{ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 6379) }], options));
}

/** An auto-pipelining connection gets every Lua script before its first call (see `defineLuaScripts`). */
function withScripts(redis: Redis): Redis {
  if (redis.options.enableAutoPipelining) defineLuaScripts(redis);
  return redis;
}

/** Every node of a Cluster gets the seed's credentials and TLS; a Cluster has only database 0. */
function seedCredentials(url: string): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && db !== '0') throw new Error(`REDIS_URL ${u.host}/${db}: a Redis Cluster has only database 0`);
  const out: RedisOptions = {};
  if (u.username) out.username = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') out.tls = {};
  return out;
}

export function isCluster(redis: Redis): redis is Cluster {
  return redis.isCluster;
}

/**
 * A new connection to the same Redis or Cluster with the same settings, `override` applied to
 * its (node) connections — `redis.duplicate()` takes options differently for a Cluster. It never
 * auto-pipelines: blocking commands and BullMQ's transactions need calls sent as they are made.
 */
export function duplicateRedis(redis: Redis, override: Partial<RedisOptions> = {}): Redis {
  if (isCluster(redis))
    return redis.duplicate(undefined, {
      enableAutoPipelining: false,
      redisOptions: { ...redis.options.redisOptions, ...override },
    });
  return redis.duplicate({ enableAutoPipelining: false, ...override });
}

/** Resolves when the connection is ready, rejects after `timeoutMs` with a message saying what to start. */
export async function waitForRedis(redis: Redis, url: string, timeoutMs = 5_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `Redis not reachable at ${redactUrl(url)} after ${timeoutMs} ms — start redis-server or set REDIS_URL`,
        ),
      );
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
