import type { Queue } from 'bullmq';
import type { ApiKey, Env, Logger } from '@research/config';
import type { ExpiryJobData, Redis, TaskJobData, TaskStore } from '@research/queue';
import type { SseStreams } from './sse.js';

/** What the HTTP app needs; `createApi` builds these from the environment, tests build their own. */
export interface ApiDeps {
  env: Env;
  /** Connection made with `createRedis(url, 'api')`: fails fast while Redis is down. */
  redis: Redis;
  store: TaskStore;
  /** The `agent` queue, with `prefix: env.QUEUE_PREFIX`. */
  queue: Queue<TaskJobData>;
  /** The `expiry` queue (checks of tasks with a `ttlSeconds`). Default: one the app opens over `redis`. */
  expiry?: Queue<ExpiryJobData>;
  logger: Logger;
  /** Open SSE streams, so shutdown can end them. Default: a fresh set per app. */
  streams?: SseStreams;
  /** Accepted keys. Default: `loadApiKeys(env)` (API_KEYS and API_KEYS_FILE). */
  keys?: readonly ApiKey[];
}
