import express, { type Express } from 'express';
import helmet from 'helmet';
import { createBullBoard } from '@bull-board/api';
import { ExpressAdapter } from '@bull-board/express';
import { TaskStore, WorkerRegistry, type Redis } from '@research/queue';
import type { Logger } from '@research/config';
import { basicAuth, type Login } from './auth.js';
import { LoginFailureGate } from './login-limit.js';
import { QueueCatalog } from './queues.js';
import { workersRouter } from './workers-page.js';

export interface DashboardDeps {
  /** Shared by every queue adapter and the worker registry. The caller owns it: `close()` leaves it open. */
  connection: Redis;
  /** BullMQ key prefix (`QUEUE_PREFIX`). */
  prefix: string;
  /** Required unless `readOnly`; every route then needs it. */
  login?: Login;
  /** Hide every write action in the board. With no `login` this must be true. Default: false. */
  readOnly?: boolean;
  /** A worker that has not beaten for this long is not listed on `/workers`. */
  workerStaleMs: number;
  /** How often step queues are rediscovered. Default: 2_000. */
  refreshIntervalMs?: number;
  /** Failed logins one client address may make per minute (`AUTH_FAILURE_LIMIT_PER_MIN`). Default: 20. */
  loginFailuresPerMin?: number;
  /** Express `trust proxy` (`TRUST_PROXY`): which X-Forwarded-For to believe for the client's address. Default: false. */
  trustProxy?: boolean | number | string;
  logger?: Logger;
}

export interface Dashboard {
  app: Express;
  /** Re-reads the set of queues now (it also happens every `refreshIntervalMs`). */
  refreshQueues(): Promise<void>;
  /** Stops rediscovery and closes the queues (not the connection). */
  close(): Promise<void>;
}

/**
 * Bull Board over the `agent` queue and every worker's step queue, behind HTTP basic auth,
 * plus a `/workers` page. `main.ts` only listens; tests drive the app in-process.
 */
export function createDashboard(deps: DashboardDeps): Dashboard {
  const readOnly = deps.readOnly ?? false;
  if (!deps.login && !readOnly) {
    throw new Error('createDashboard: a login is required unless the dashboard is read-only');
  }
  const registry = new WorkerRegistry(deps.connection, deps.prefix);
  const store = new TaskStore(deps.connection, deps.prefix);
  const catalog = new QueueCatalog({ connection: deps.connection, prefix: deps.prefix, registry, store, readOnly });

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/');
  const board = createBullBoard({
    // Bull Board decides once, from the first queues, whether the whole board is read-only.
    queues: catalog.adapters(),
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: readOnly ? 'Research jobs (read-only)' : 'Research jobs',
        // Relative to the board's <base href>, so it works under any mount path.
        miscLinks: [{ text: 'Workers', url: 'workers' }],
        hideDocsLink: true,
        sortQueues: false,
        jobDetails: { defaultTab: 'Logs' },
      },
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy ?? false);
  app.use(securityHeaders());
  if (deps.login) {
    const gate = new LoginFailureGate(deps.connection, deps.prefix, deps.loginFailuresPerMin ?? 20);
    app.use(basicAuth(deps.login, gate));
  }
  app.use(workersRouter({ registry, store, staleMs: deps.workerStaleMs }));
  app.use('/', serverAdapter.getRouter() as express.Router);
  // Our own routes fail only when Redis does; say so instead of Express's default stack-trace page.
  app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    deps.logger?.warn({ err }, 'dashboard request failed');
    if (!res.headersSent) res.status(503).type('text/plain').send('Redis is not reachable; try again shortly\n');
  });

  let refreshing: Promise<void> | undefined;
  const refreshQueues = (): Promise<void> => {
    // One refresh at a time: during a Redis outage calls would otherwise pile up behind each other.
    refreshing ??= catalog
      .refresh(board)
      .then((changed) => {
        if (changed) deps.logger?.info({ queues: catalog.names() }, 'dashboard queues changed');
      })
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };
  const tick = () => {
    refreshQueues().catch((err: unknown) => deps.logger?.warn({ err }, 'could not list step queues'));
  };
  tick();
  const timer = setInterval(tick, deps.refreshIntervalMs ?? 2_000);
  timer.unref();

  return {
    app,
    refreshQueues,
    async close() {
      clearInterval(timer);
      await refreshing?.catch(() => undefined);
      await catalog.close();
    },
  };
}

/**
 * Bull Board is a single-page app of its own origin: scripts, styles, fonts and API calls from
 * 'self' only (its web fonts on fonts.googleapis.com are refused: an operator's page views do
 * not go to a third party, and the system font is used), inline styles allowed (the board and
 * the workers page use them), and nothing may frame it. HSTS belongs to whatever terminates TLS.
 */
function securityHeaders(): express.RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: false,
    xFrameOptions: { action: 'deny' },
  });
}
