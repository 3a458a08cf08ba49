import { createServer } from 'node:http';
import { loadConfigOrExit, redactUrl, requireApiKeys } from '@research/config';
import { configureHttpServer } from './http-server.js';
import { createApi, shutdownServer } from './server.js';

const env = loadConfigOrExit('api', [requireApiKeys]);
const api = createApi(env);
const { logger } = api.deps;

// Not app.listen(port, callback): express 5 calls that callback with the error when the bind
// fails, so a taken port was logged as "api listening" before the process died.
const server = createServer(api.app);
// A slow client may not hold a socket open for ever while sending its request.
configureHttpServer(server);
server.on('error', (err: NodeJS.ErrnoException) => {
  const why =
    err.code === 'EADDRINUSE'
      ? `port ${env.PORT} is already in use; stop what holds it or set PORT to a free port`
      : err.code === 'EACCES'
        ? `no permission to listen on port ${env.PORT}; set PORT to a port above 1023`
        : `${err.message} (PORT=${env.PORT})`;
  logger.fatal({ err, port: env.PORT }, `api could not listen: ${why}`);
  process.exit(1);
});
server.listen(env.PORT, () => {
  logger.info({ port: env.PORT, redis: redactUrl(env.REDIS_URL), prefix: env.QUEUE_PREFIX }, 'api listening');
});

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'api stopping');
  const force = setTimeout(() => {
    logger.warn('api did not stop within 10 s; exiting');
    process.exit(1);
  }, 10_000);
  force.unref();
  // Stop accepting, end open SSE streams (they would hold server.close() for ever), let
  // in-flight requests finish while idle keep-alive sockets are swept, then close Redis.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await shutdownServer(api.app);
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  server.closeIdleConnections();
  await closed;
  clearInterval(sweep);
  await api.close();
  clearTimeout(force);
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
