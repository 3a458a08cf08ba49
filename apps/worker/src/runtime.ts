import { type Job, Queue, Worker } from 'bullmq';
import { type ModelProvider, createProvider } from '@research/agent';
import type { Env, Logger } from '@research/config';
import {
  AGENT_QUEUE,
  DeathWatch,
  FairShare,
  type Redis,
  TaskStore,
  WorkerRegistry,
  createRedis,
  duplicateRedis,
  queueOptions,
  stepQueueName,
  waitForRedis,
  workerOptions,
} from '@research/queue';
import { DockerSandbox, type Sandbox, TaskSandboxPool, sandboxOptionsFromEnv } from '@research/sandbox';
import { sandboxRunner } from './action-runner.js';
import { sandboxGc } from './gc.js';
import { Liveness } from './liveness.js';
import { StepDispatcher } from './step-dispatcher.js';
import { StepExecutor } from './step-executor.js';
import { TaskRunner } from './task-runner.js';
import { WebSteps } from './web-steps.js';
import { startWebhookWorker } from './webhook-deliverer.js';
import { WorkspaceCleaner } from './workspace-cleaner.js';

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
  // The store's connection sends what its running tasks write in the same turn of the event loop
  // together: a step's events, progress and usage, and many tasks' at once under load. One write
  // per call was the largest single cost of a step (bench/RESULTS.md).
  const connection = createRedis(env.REDIS_URL, 'worker', { cluster: env.REDIS_CLUSTER, autoPipelining: true });
  await waitForRedis(connection, env.REDIS_URL, 10_000);
  // BullMQ's queues get a connection of their own, as in the API (see queueOptions). Duplicates
  // send each call as it is made.
  const queues = duplicateRedis(connection);
  const blockingAgent = duplicateRedis(connection);
  const blockingSteps = duplicateRedis(connection);
  const subscriber = duplicateRedis(connection);
  const prefix = env.QUEUE_PREFIX;
  const store = new TaskStore(connection, prefix, {
    retentionSeconds: env.TASK_RETENTION_HOURS * 3_600,
    webhookRetry: { attempts: env.WEBHOOK_ATTEMPTS, backoffMs: env.WEBHOOK_BACKOFF_MS },
    queueConnection: queues,
  });
  const registry = new WorkerRegistry(connection, prefix);
  const deathWatch = new DeathWatch(registry, connection, env.WORKER_HEARTBEAT_MS * 6);

  const sandbox = givenSandbox ?? createSandbox(env, log, store);
  // Before the container starts: a bad EGRESS_* entry stops the worker here, naming it.
  const web = new WebSteps({ env, sandbox, budgets: store.web, logger: log });
  const info = await sandbox.ensure();
  log.info(
    { container: info.name, containerId: info.containerId.slice(0, 12), image: info.image, created: info.created },
    'sandbox ready',
  );

  const stepQueueNameForMe = stepQueueName(workerId);
  const stepQueue = new Queue(stepQueueNameForMe, queueOptions(queues, prefix));
  const dispatcher = new StepDispatcher(stepQueue, store, queues, prefix, deathWatch, log);
  const agentQueue = new Queue(AGENT_QUEUE, queueOptions(queues, prefix));
  const fair = new FairShare(connection, prefix, { maxRunning: env.TENANT_MAX_RUNNING, queue: agentQueue });
  const tasks = new TaskRunner({
    env,
    workerId,
    store,
    sandbox,
    dispatcher,
    fair,
    logger: log,
    // One model client for every task of the worker (its connection pool, its parsed options).
    provider: provider ?? createProvider(env, log),
    web: web.enabled,
  });
  const steps = new StepExecutor({
    store,
    sandbox,
    runners: { sandbox: sandboxRunner(sandbox), worker: web },
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

  const webhooks = startWebhookWorker(env, store, connection, log);

  // Cancel: the API flags the task and publishes its id; whoever runs it aborts it.
  await store.cancels.subscribe(subscriber, (taskId) => tasks.cancel(taskId));
  // Delete: the API asks the worker that ran the task last to remove its workspace.
  const cleaner = new WorkspaceCleaner({ workerId, cleanups: store.workspaces, sandbox, logger: log });
  await cleaner.start(subscriber);

  const liveness = new Liveness({
    workerId,
    connection,
    queues,
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
  // Slots of killed workers come back as their locks expire; whoever notices promotes the parked.
  const reconcile =
    env.TENANT_MAX_RUNNING > 0
      ? setInterval(
          () => void fair.reconcile().catch((err: unknown) => log.warn({ err }, 'could not reconcile running slots')),
          env.WORKER_HEARTBEAT_MS,
        ).unref()
      : undefined;

  log.info(
    { concurrency: env.WORKER_CONCURRENCY, stepQueue: stepQueueNameForMe, webSearch: web.search?.name ?? 'none' },
    'worker started',
  );

  let closing: Promise<void> | undefined;
  return {
    workerId,
    sandbox,
    close(graceMs = 30_000) {
      closing ??= (async () => {
        liveness.stop();
        clearInterval(reconcile);
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
        await cleaner.close();
        await stepQueue.close();
        await agentQueue.close();
        await webhooks?.close();
        await store.close();
        await registry.remove(workerId).catch(() => undefined);
        await sandbox
          .dispose(env.SANDBOX_ON_SHUTDOWN)
          .catch((err: unknown) => log.warn({ err }, 'sandbox dispose failed'));
        await Promise.all(
          [subscriber, blockingAgent, blockingSteps, queues, connection].map((c: Redis) =>
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
