import { createLogger, loadConfigOrExit, requireLlmEndpoint } from '@research/config';
import { requireWebSearch } from '@research/web';
import { startWorker } from './runtime.js';
import { holdWorkerId } from './worker-id.js';

const env = loadConfigOrExit('worker', [requireLlmEndpoint, requireWebSearch]);
const logger = createLogger({
  level: env.LOG_LEVEL,
  ...(env.LOG_PRETTY !== undefined ? { pretty: env.LOG_PRETTY } : {}),
  base: { app: 'worker' },
});

// Before the worker touches its container or step queue: both are named after WORKER_ID.
const hold = await holdWorkerId({ env, logger }).catch((err: unknown) => {
  logger.fatal({ err, workerId: env.WORKER_ID }, `worker could not start: ${(err as Error).message}`);
  process.exit(1);
});

const runtime = await startWorker({ env, logger }).catch(async (err: unknown) => {
  logger.fatal({ err }, `worker could not start: ${(err as Error).message}`);
  await hold.release();
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
    // The id is freed only after the worker let go of its container and step queue.
    void runtime
      .close()
      .then(() => hold.release())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  });
}
