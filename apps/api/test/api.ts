import { Queue } from 'bullmq';
import { afterAll, beforeAll } from 'vitest';
import { createLogger, type Env } from '@research/config';
import { AGENT_QUEUE, TaskStore, createRedis, waitForRedis, type Redis, type TaskJobData } from '@research/queue';
import { cleanPrefix, requireRedis, startInProcessApi, testPrefix } from '@research/testing';
import { createServer, shutdownServer } from '../src/server.js';

export const KEY = 'test-key-one-0123456789';
/** A key of another tenant (`other`). */
export const OTHER_KEY = 'test-key-two-0123456789';
export const AUTH = { authorization: `Bearer ${KEY}` };

export interface TestApi {
  url: string;
  port: number;
  prefix: string;
  env: Env;
  redis: Redis;
  store: TaskStore;
  queue: Queue<TaskJobData>;
  close(): Promise<void>;
}

/**
 * The app from `createServer` over deps this file builds (so tests reach the store and queue it
 * uses), on an ephemeral loopback port, over real Redis, with keys {@link KEY} and {@link OTHER_KEY}.
 */
export async function startApi(options: {
  prefix: string;
  redisUrl?: string;
  env?: Record<string, string>;
  /** Wait until Redis answers (default true); false for an API over a Redis that is down. */
  waitReady?: boolean;
}): Promise<TestApi> {
  const { prefix } = options;
  const started = await startInProcessApi(
    async (env) => {
      const redis = createRedis(env.REDIS_URL, 'api');
      redis.on('error', () => {});
      if (options.waitReady !== false) await waitForRedis(redis, env.REDIS_URL, 3_000);
      const store = new TaskStore(redis, prefix, { retentionSeconds: 600 });
      const queue = new Queue<TaskJobData>(AGENT_QUEUE, { connection: redis, prefix });
      queue.on('error', () => {});
      const logger = createLogger({ level: 'silent', pretty: false });
      const app = createServer({ env, redis, store, queue, logger });
      return {
        app,
        redis,
        store,
        queue,
        async close() {
          await shutdownServer(app);
          await queue.close().catch(() => {});
          redis.disconnect();
        },
      };
    },
    {
      prefix,
      apiKeys: [KEY, `other:${OTHER_KEY}`],
      redisUrl: options.redisUrl,
      env: { MAX_BODY_BYTES: String(16 * 1024), ...options.env },
    },
  );
  const { redis, store, queue } = started.api;
  return { url: started.url, port: started.port, prefix, env: started.env, redis, store, queue, close: started.close };
}

/**
 * The API for one test file: started in `beforeAll` (Redis required, a prefix of its own), closed
 * and its keys deleted in `afterAll`. The object is filled in when `beforeAll` has run.
 */
export function useApi(options: { env?: Record<string, string> } = {}): TestApi {
  const api = {} as TestApi;
  const prefix = testPrefix('apitest');
  beforeAll(async () => {
    await requireRedis();
    Object.assign(api, await startApi({ prefix, ...(options.env ? { env: options.env } : {}) }));
  });
  afterAll(async () => {
    await api.close?.();
    await cleanPrefix(prefix);
  });
  return api;
}
