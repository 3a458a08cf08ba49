import express, { type Express } from 'express';
import helmet from 'helmet';
import { Queue } from 'bullmq';
import { createLogger, loadApiKeys, type Env } from '@research/config';
import {
  AGENT_QUEUE,
  EXPIRY_QUEUE,
  type ExpiryJobData,
  QueuedQuota,
  TaskStore,
  createRedis,
  queueOptions,
  type TaskJobData,
} from '@research/queue';
import { bearerAuth } from './auth.js';
import type { ApiDeps } from './deps.js';
import { NotFoundError, RedisUnavailableError, errorHandler } from './errors.js';
import { ExpirySweeper } from './expiry.js';
import { AuthFailureGate, keyRateLimit } from './limits.js';
import { createMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { guard } from './redis-guard.js';
import { archiveRouter } from './routes/archive.js';
import { eventsRouter } from './routes/events.js';
import { filesRouter } from './routes/files.js';
import { jobsRouter } from './routes/jobs.js';
import { webhooksRouter } from './routes/webhooks.js';
import { methodNotAllowed } from './routes/method.js';
import { usageRouter } from './routes/usage.js';
import { SseStreams } from './sse.js';

/** Readiness answers within about this long even when Redis hangs. */
const READY_PING_TIMEOUT_MS = 1_000;

const shutdowns = new WeakMap<Express, () => Promise<void>>();

/** The HTTP app (no listen). Tests drive it in-process; `main.ts` listens. */
export function createServer(deps: ApiDeps): Express {
  const { env, redis, logger } = deps;
  const streams = deps.streams ?? new SseStreams();
  const metrics = createMetrics(deps);
  const limits = { maxBodyBytes: env.MAX_BODY_BYTES };

  const keys = deps.keys ?? loadApiKeys(env);
  const ownExpiry = deps.expiry === undefined;
  const expiry = deps.expiry ?? new Queue<ExpiryJobData>(EXPIRY_QUEUE, queueOptions(redis, env.QUEUE_PREFIX));
  if (ownExpiry) expiry.on('error', (err) => logger.debug({ err: err.message }, 'expiry queue error'));

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.set('trust proxy', env.TRUST_PROXY);
  // The API serves JSON, event streams and task files, never a page: nothing may load or frame it.
  // HSTS belongs to whatever terminates TLS in front of it.
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
      },
      strictTransportSecurity: false,
      xFrameOptions: { action: 'deny' },
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.all('/healthz', methodNotAllowed(['GET']));

  app.get('/readyz', async (_req, res) => {
    await guard(redis, () => redis.ping(), READY_PING_TIMEOUT_MS).catch(() => {
      throw new RedisUnavailableError('not ready: Redis does not answer PING');
    });
    res.json({ ok: true, redis: 'ok' });
  });
  app.all('/readyz', methodNotAllowed(['GET']));

  // No auth, like most Prometheus targets: restrict it at the network level in production.
  app.get('/metrics', async (_req, res) => {
    const body = await metrics.registry.metrics();
    res.type(metrics.registry.contentType).send(body);
  });
  app.all('/metrics', methodNotAllowed(['GET']));

  const openapi = JSON.stringify(openApiDocument());
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(openapi);
  });
  app.all('/openapi.json', methodNotAllowed(['GET']));

  const v1 = express.Router();
  v1.use(
    bearerAuth(
      keys,
      new AuthFailureGate(redis, env.QUEUE_PREFIX, env.AUTH_FAILURE_LIMIT_PER_MIN),
      keyRateLimit(redis, env.QUEUE_PREFIX, env.API_RATE_LIMIT_PER_MIN),
    ),
  );
  v1.use(jobsRouter({ ...deps, expiry }));
  v1.use(eventsRouter(deps, streams));
  v1.use(filesRouter(deps));
  v1.use(archiveRouter(deps));
  v1.use(usageRouter(deps));
  v1.use(webhooksRouter(deps));
  app.use('/v1', v1);

  app.use((req, _res, next) => next(new NotFoundError(`no route ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(errorHandler(logger, limits));

  shutdowns.set(app, async () => {
    streams.closeAll();
    await metrics.close();
    if (ownExpiry) await expiry.close().catch(() => undefined);
  });
  return app;
}

/** Ends the app's open SSE streams and releases what it holds (not the deps' connections). */
export async function shutdownServer(app: Express): Promise<void> {
  await shutdowns.get(app)?.();
}

export interface Api {
  app: Express;
  deps: ApiDeps;
  /** Ends open streams, then closes the queue and the Redis connection. */
  close(): Promise<void>;
}

/** Builds the deps from the environment and the app over them. */
export function createApi(env: Env, logger = createLogger({ level: env.LOG_LEVEL, base: { app: 'api' } })): Api {
  // Not auto-pipelined, unlike a worker's store: intake sends few, heavy scripts, and batch intake
  // measured slower with it (bench/RESULTS.md, 2026-12-04 20:15).
  const redis = createRedis(env.REDIS_URL, 'api', { cluster: env.REDIS_CLUSTER });
  // Errors surface on the calls that fail (503); without a listener ioredis would log each retry.
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
  // The queues get a connection of their own (see queueOptions).
  const queueRedis = redis.duplicate();
  const store = new TaskStore(redis, env.QUEUE_PREFIX, {
    retentionSeconds: Math.round(env.TASK_RETENTION_HOURS * 3_600),
    webhookRetry: { attempts: env.WEBHOOK_ATTEMPTS, backoffMs: env.WEBHOOK_BACKOFF_MS },
    queueConnection: queueRedis,
  });
  const queue = new Queue<TaskJobData>(AGENT_QUEUE, queueOptions(queueRedis, env.QUEUE_PREFIX));
  queue.on('error', (err) => logger.debug({ err: err.message }, 'queue error'));
  const expiry = new Queue<ExpiryJobData>(EXPIRY_QUEUE, queueOptions(queueRedis, env.QUEUE_PREFIX));
  expiry.on('error', (err) => logger.debug({ err: err.message }, 'expiry queue error'));
  const deps: ApiDeps = { env, redis, store, queue, expiry, logger, streams: new SseStreams() };
  const app = createServer(deps);
  // The sweeper's Worker blocks on its connection, which must wait through outages like a worker's.
  const sweeperRedis = createRedis(env.REDIS_URL, 'worker', { cluster: env.REDIS_CLUSTER });
  sweeperRedis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error (expiry sweeper)'));
  const sweeper = new ExpirySweeper({
    connection: sweeperRedis,
    prefix: env.QUEUE_PREFIX,
    store,
    queue,
    quota: new QueuedQuota(redis, env.QUEUE_PREFIX, env.TENANT_MAX_QUEUED),
    logger,
  });
  return {
    app,
    deps,
    async close() {
      await shutdownServer(app);
      await sweeper.close().catch(() => {});
      await Promise.all([queue.close().catch(() => {}), expiry.close().catch(() => {})]);
      await store.close().catch(() => {});
      for (const c of [queueRedis, sweeperRedis]) {
        if (c.status === 'ready') await c.quit().catch(() => c.disconnect());
        else c.disconnect();
      }
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    },
  };
}
