import type { RequestListener } from 'node:http';
import { loadConfig, type Env } from '@research/config';
import { type Redis, type TaskStore, waitForRedis } from '@research/queue';
import { listen } from './http.js';
import { REDIS_URL } from './services.js';

/** What a test builds the API as: the app, and what closes its connections. */
export interface AppUnderTest {
  app: RequestListener;
  /** Ends the app's open streams and closes what it holds (not the listening socket). */
  close(): Promise<void>;
}

export interface InProcessApiOptions {
  /** The queue prefix; a test's own (see `testPrefix`). Its keys are left in place: a restart finds them. */
  prefix: string;
  /** Bearer keys the API accepts. */
  apiKeys: string[];
  /** Default: {@link REDIS_URL}. */
  redisUrl?: string;
  /** More environment, over `REDIS_URL`, `QUEUE_PREFIX`, `API_KEYS` and a silent log. */
  env?: Record<string, string>;
  /** Port on loopback; default 0 (a free one). A restart passes the port it had. */
  port?: number;
}

export interface InProcessApi<T extends AppUnderTest> {
  url: string;
  port: number;
  env: Env;
  /** What `create` returned. */
  api: T;
  /** Graceful: ends SSE streams cleanly, as a restarting API does. `abrupt` cuts the sockets first. */
  close(options?: { abrupt?: boolean }): Promise<void>;
}

/**
 * The API in this process, built by `create` from an environment of the test's own (its prefix
 * and keys over real Redis), listening on loopback. The kit takes the API as a function so that
 * it depends on no app; the API's tests pass `createServer` over deps they build, others `createApi`.
 */
export async function startInProcessApi<T extends AppUnderTest>(
  create: (env: Env) => T | Promise<T>,
  options: InProcessApiOptions,
): Promise<InProcessApi<T>> {
  const env = loadConfig([], {
    REDIS_URL: options.redisUrl ?? REDIS_URL,
    QUEUE_PREFIX: options.prefix,
    API_KEYS: options.apiKeys.join(','),
    LOG_LEVEL: 'silent',
    LOG_PRETTY: 'false',
    ...options.env,
  });
  const api = await create(env);
  const listening = await listen(api.app, options.port).catch(async (err: unknown) => {
    await api.close();
    throw err;
  });
  return {
    url: listening.url,
    port: listening.port,
    env,
    api,
    async close({ abrupt = false } = {}) {
      if (abrupt) listening.server.closeAllConnections();
      await api.close();
      await listening.close();
    },
  };
}

/** What the API's own `createApi` builds, as far as a test of its clients needs it. */
export interface BuiltApi extends AppUnderTest {
  deps: { redis: Redis; store: TaskStore };
}

/** An API started by {@link startBuiltApi}: where it listens, the store behind it (to play the worker), and its close. */
export interface RunningApi {
  url: string;
  port: number;
  store: TaskStore;
  /** Graceful: ends SSE streams cleanly, as a restarting API does. `abrupt` cuts the sockets first. */
  close(options?: { abrupt?: boolean }): Promise<void>;
}

/**
 * The API as its `main` builds it (`createApi`, passed in so the kit depends on no app), once
 * its Redis answers: for the tests of the API's clients (the CLI, the client package).
 */
export async function startBuiltApi(
  createApi: (env: Env) => BuiltApi,
  options: InProcessApiOptions,
): Promise<RunningApi> {
  const started = await startInProcessApi(async (env) => {
    const api = createApi(env);
    await waitForRedis(api.deps.redis, env.REDIS_URL, 3_000);
    return api;
  }, options);
  return { url: started.url, port: started.port, store: started.api.deps.store, close: started.close };
}
