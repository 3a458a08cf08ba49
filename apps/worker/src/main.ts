import { createLogger, loadConfigOrExit, requireLlmEndpoint } from '@research/config';
import { requireWebSearch } from '@research/web';
import { startWorker, type WorkerRuntime } from './runtime.js';
import { holdWorkerId, type WorkerIdHold } from './worker-id.js';

const env = loadConfigOrExit('worker', [requireLlmEndpoint, requireWebSearch]);
const logger = createLogger({
  level: env.LOG_LEVEL,
  ...(env.LOG_PRETTY !== undefined ? { pretty: env.LOG_PRETTY } : {}),
  base: { app: 'worker' },
});

let hold: WorkerIdHold | undefined;
let runtime: WorkerRuntime | undefined;
let stopping = false;

/** The id is freed only after the worker let go of its container and step queue. */
async function stop(): Promise<void> {
  await runtime?.close();
  await hold?.release();
}

function exitAfter(stopped: Promise<void>): Promise<never> {
  return stopped.then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
}

// Handled from the first moment: as PID 1 (node in a container) a signal nobody handles is
// ignored, so a `docker stop` during startup would wait out its timeout and end in SIGKILL. A
// signal during startup stops the worker as soon as the part being started is up.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) {
      logger.warn('second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    if (!runtime) {
      logger.info({ signal }, 'stopping once startup is done');
      return;
    }
    void exitAfter(stop());
  });
}

// Before the worker touches its container or step queue: both are named after WORKER_ID.
hold = await holdWorkerId({ env, logger }).catch((err: unknown) => {
  logger.fatal({ err, workerId: env.WORKER_ID }, `worker could not start: ${(err as Error).message}`);
  process.exit(1);
});
if (stopping) await exitAfter(stop());

runtime = await startWorker({ env, logger }).catch(async (err: unknown) => {
  logger.fatal({ err }, `worker could not start: ${(err as Error).message}`);
  await hold?.release();
  process.exit(1);
});

if (stopping) await exitAfter(stop());
