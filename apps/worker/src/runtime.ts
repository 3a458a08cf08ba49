import { type Job, Queue, Worker } from 'bullmq';
import type { ModelProvider } from '@research/agent';
import type { Env, Logger } from '@research/config';
import {
  AGENT_QUEUE,
  DeathWatch,
  type Redis,
  TaskStore,
  WorkerRegistry,
  createRedis,
  queueOptions,
  stepQueueName,
  waitForRedis,
  workerOptions,
} from '@research/queue';
import { DockerSandbox, type Sandbox, TaskSandboxPool, sandboxOptionsFromEnv } from '@research/sandbox';
import { sandboxGc } from './gc.js';
import { Liveness } from './liveness.js';
import { StepDispatcher } from './step-dispatcher.js';
import { StepExecutor } from './step-executor.js';
import { TaskRunner } from './task-runner.js';

export interface WorkerRuntimeOptions {
  env: Env;
  logger: Logger;
  /** Defaults to a DockerSandbox built from the environment. */
  sandbox?: Sandbox;
  /** Defaults to the provider the environment selects. */
  provider?: ModelProvider;
}

export interface WorkerRuntime {
  readonly workerId: string;
  readonly sandbox: Sandbox;
  /** Stops taking work, lets running tasks finish for up to `graceMs`, then releases everything. */
  close(graceMs?: number): Promise<void>;
}

/**
 * One worker process: its sandbox container, the `agent` queue and its own step queue. This only
 * wires the parts: the task runner (running tasks, cancel, lock loss, how a task ends), the step
 * executor (its step queue's jobs in the sandbox), the step dispatcher (a task's tool calls as
 * step jobs) and liveness (heartbeat, reaper).
 */
export async function startWorker({
  env,
  logger,
  sandbox: givenSandbox,
  provider,
}: WorkerRuntimeOptions): Promise<WorkerRuntime> {
  const workerId = env.WORKER_ID;
  const log = logger.child({ workerId });
  const connection = createRedis(env.REDIS_URL, 'worker', { cluster: env.REDIS_CLUSTER });
  await waitForRedis(connection, env.REDIS_URL, 10_000);
  const blockingAgent = connection.duplicate();
  const blockingSteps = connection.duplicate();
  const subscriber = connection.duplicate();
  const prefix = env.QUEUE_PREFIX;
  const store = new TaskStore(connection, prefix, { retentionSeconds: env.TASK_RETENTION_HOURS * 3_600 });
  const registry = new WorkerRegistry(connection, prefix);
  const deathWatch = new DeathWatch(registry, connection, env.WORKER_HEARTBEAT_MS * 6);

  const sandbox = givenSandbox ?? createSandbox(env, log, store);
  const info = await sandbox.ensure();
  log.info(
    { container: info.name, containerId: info.containerId.slice(0, 12), image: info.image, created: info.created },
    'sandbox ready',
  );

  const stepQueueNameForMe = stepQueueName(workerId);
  const stepQueue = new Queue(stepQueueNameForMe, queueOptions(connection, prefix));
  const dispatcher = new StepDispatcher(stepQueue, store, connection, prefix, deathWatch, log);
  const tasks = new TaskRunner({
    env,
    workerId,
    store,
    sandbox,
    dispatcher,
    logger: log,
    ...(provider ? { provider } : {}),
  });
  const steps = new StepExecutor({
    store,
    sandbox,
    queueName: stepQueueNameForMe,
    logger: log,
    signalOf: (taskId) => tasks.signalOf(taskId),
  });

  const lock = { lockDuration: env.WORKER_LOCK_MS, stalledInterval: env.WORKER_STALLED_INTERVAL_MS };
  const stepWorker = new Worker(
    stepQueueNameForMe,
    async (job: Job) => steps.process(job),
    workerOptions('step', {
      connection: blockingSteps,
      prefix,
      concurrency: Math.max(2, env.WORKER_CONCURRENCY * 2),
      ...lock,
    }),
  );
  stepWorker.on('completed', (job) => dispatcher.onCompleted(job, steps.outcomeOf(job)));
  stepWorker.on('failed', (job, err) => dispatcher.onFailed(job, err));
  stepWorker.on('error', (err) => log.error({ err }, 'step worker error'));

  const taskWorker = new Worker(
    AGENT_QUEUE,
    async (job: Job) => tasks.process(job),
    workerOptions('task', { connection: blockingAgent, prefix, concurrency: env.WORKER_CONCURRENCY, ...lock }),
  );
  taskWorker.on('error', (err) => log.error({ err }, 'task worker error'));
  taskWorker.on('lockRenewalFailed', (jobIds: string[]) => tasks.loseLocks(jobIds));
  taskWorker.on('failed', (job, err) => tasks.onFailed(job, err));

  // Cancel: the API flags the task and publishes its id; whoever runs it aborts it.
  await store.cancels.subscribe(subscriber, (taskId) => tasks.cancel(taskId));

  const liveness = new Liveness({
    workerId,
    connection,
    registry,
    deathWatch,
    running: () => tasks.running(),
    sandbox,
    sandboxInfo: info,
    heartbeatMs: env.WORKER_HEARTBEAT_MS,
    retentionMs: env.SANDBOX_RETENTION_HOURS * 3_600_000,
    logger: log,
    collectGarbage: sandboxGc({ prefix, registry, store, staleMs: deathWatch.staleMs, logger: log }),
  });
  await liveness.start();

  log.info({ concurrency: env.WORKER_CONCURRENCY, stepQueue: stepQueueNameForMe }, 'worker started');

  let closing: Promise<void> | undefined;
  return {
    workerId,
    sandbox,
    close(graceMs = 30_000) {
      closing ??= (async () => {
        liveness.stop();
        deathWatch.close();
        log.info({ running: tasks.running().length }, 'worker stopping');
        // Running tasks get the grace period; after it they are left to stall and resume elsewhere.
        const graceful = taskWorker.close();
        const timedOut = await Promise.race([
          graceful.then(() => false),
          new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
        ]);
        if (timedOut) await taskWorker.close(true);
        await stepWorker.close(timedOut);
        await stepQueue.close();
        await registry.remove(workerId).catch(() => undefined);
        await sandbox
          .dispose(env.SANDBOX_ON_SHUTDOWN)
          .catch((err: unknown) => log.warn({ err }, 'sandbox dispose failed'));
        await Promise.all(
          [subscriber, blockingAgent, blockingSteps, connection].map((c: Redis) =>
            c.quit().catch(() => c.disconnect()),
          ),
        );
        log.info('worker stopped');
      })();
      return closing;
    },
  };
}

/** The environment's sandbox: one container for the worker, or one per task from a warm pool. */
function createSandbox(env: Env, log: Logger, store: TaskStore): Sandbox {
  if (env.SANDBOX_ISOLATION !== 'task') return new DockerSandbox(sandboxOptionsFromEnv(env, log));
  return new TaskSandboxPool({
    base: sandboxOptionsFromEnv(env, log),
    // Recorded with the task, so a worker that resumes it finds its container and files.
    assignments: {
      get: (taskId) => store.slots.get(taskId),
      set: (taskId, slot) => store.slots.set(taskId, slot),
    },
    warm: env.SANDBOX_POOL_SIZE,
    logger: log,
  });
}
