import { createServer } from 'node:http';
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
// Not app.listen(port, callback): express 5 calls that callback with the error when the bind
// fails, so a taken port would be announced as listening before the process died.
const server = createServer(dashboard.app);
server.on('error', (err: NodeJS.ErrnoException) => {
  const where = `${settings.host ?? '*'}:${env.DASHBOARD_PORT}`;
  const why =
    err.code === 'EADDRINUSE'
      ? `port ${env.DASHBOARD_PORT} (${where}) is already in use; stop what holds it or set DASHBOARD_PORT to a free port`
      : err.code === 'EACCES'
        ? `no permission to listen on port ${env.DASHBOARD_PORT}; set DASHBOARD_PORT to a port above 1023`
        : `${err.message} (DASHBOARD_PORT=${env.DASHBOARD_PORT})`;
  logger.fatal({ err, port: env.DASHBOARD_PORT }, `dashboard could not listen: ${why}`);
  process.exit(1);
});
// Without a host Node listens on every interface (IPv4 and IPv6).
if (settings.host) server.listen(env.DASHBOARD_PORT, settings.host, onListening);
else server.listen(env.DASHBOARD_PORT, onListening);

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
