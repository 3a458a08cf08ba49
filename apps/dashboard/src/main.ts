import { createLogger, loadConfigOrExit } from '@research/config';
import { createRedis, waitForRedis } from '@research/queue';
import { createDashboard } from './server.js';
import { dashboardSettings, requireDashboardLogin } from './settings.js';

const env = loadConfigOrExit('dashboard', [requireDashboardLogin]);
const logger = createLogger({
  level: env.LOG_LEVEL,
  ...(env.LOG_PRETTY === undefined ? {} : { pretty: env.LOG_PRETTY }),
  base: { app: 'dashboard' },
});
const settings = dashboardSettings(env);

const connection = createRedis(env.REDIS_URL, 'api', { cluster: env.REDIS_CLUSTER });
connection.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
try {
  // The connection fails commands at once while Redis is down (so board requests answer instead
  // of hanging); wait for it once here so the first queue discovery does not fail.
  await waitForRedis(connection, env.REDIS_URL, 15_000);
} catch (err) {
  process.stderr.write(`dashboard: ${(err as Error).message}\n`);
  process.exit(1);
}

const dashboard = createDashboard({
  connection,
  prefix: env.QUEUE_PREFIX,
  ...(settings.login ? { login: settings.login } : {}),
  readOnly: settings.readOnly,
  // The registry reaps a worker after 6 silent beats; list it only while it is still beating.
  workerStaleMs: env.WORKER_HEARTBEAT_MS * 3,
  loginFailuresPerMin: env.AUTH_FAILURE_LIMIT_PER_MIN,
  trustProxy: env.TRUST_PROXY,
  logger,
});

const onListening = () => {
  const where = `http://${settings.host ?? 'localhost'}:${env.DASHBOARD_PORT}/`;
  logger.info(
    { port: env.DASHBOARD_PORT, host: settings.host ?? '*', readOnly: settings.readOnly },
    settings.login
      ? `dashboard on ${where} (login required)`
      : `dashboard on ${where} (read-only, loopback only, no login)`,
  );
};
// Without a host Node listens on every interface (IPv4 and IPv6).
const server = settings.host
  ? dashboard.app.listen(env.DASHBOARD_PORT, settings.host, onListening)
  : dashboard.app.listen(env.DASHBOARD_PORT, onListening);
server.on('error', (err) => {
  logger.fatal({ err }, 'dashboard could not listen');
  process.exit(1);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'dashboard stopping');
  const force = setTimeout(() => process.exit(1), 5_000);
  force.unref();
  server.close();
  server.closeAllConnections();
  await dashboard.close();
  await connection.quit().catch(() => connection.disconnect());
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
