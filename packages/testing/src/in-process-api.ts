import type { RequestListener } from 'node:http';
import { loadConfig, type Env } from '@research/config';
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
