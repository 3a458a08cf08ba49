import { createLogger, loadConfigOrExit, requireLlmEndpoint } from '@research/config';
import { startWorker } from './runtime.js';

const env = loadConfigOrExit('worker', [requireLlmEndpoint]);
const logger = createLogger({
  level: env.LOG_LEVEL,
  ...(env.LOG_PRETTY !== undefined ? { pretty: env.LOG_PRETTY } : {}),
  base: { app: 'worker' },
});

const runtime = await startWorker({ env, logger }).catch((err: unknown) => {
  logger.fatal({ err }, `worker could not start: ${(err as Error).message}`);
  process.exit(1);
});

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) {
      logger.warn('second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    void runtime.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
