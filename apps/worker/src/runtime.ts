import os from 'node:os';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { ModelProvider } from '@research/agent';
import type { Env, Logger } from '@research/config';
import { StepOutcome, exitCodeOf } from '@research/contracts';
import {
  AGENT_QUEUE,
  DeathWatch,
  StepJobData,
  TaskStore,
  queueOptions,
  WorkerRegistry,
  createRedis,
  stepJobId,
  stepQueueName,
  waitForRedis,
  type Redis,
} from '@research/queue';
import { DockerSandbox, TaskSandboxPool, sandboxOptionsFromEnv, type Sandbox } from '@research/sandbox';
import { StepDispatcher, isFinalFailure } from './steps.js';
import { processTask } from './task.js';

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

/** One worker process: its sandbox container, the `agent` queue and its own step queue. */
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
  const staleMs = env.WORKER_HEARTBEAT_MS * 6;
  const deathWatch = new DeathWatch(registry, connection, staleMs);

  const sandbox: Sandbox =
    givenSandbox ??
    (env.SANDBOX_ISOLATION === 'task'
      ? new TaskSandboxPool({
          base: sandboxOptionsFromEnv(env, log),
          // Recorded with the task, so a worker that resumes it finds its container and files.
          assignments: {
            get: (taskId) => store.sandboxSlot(taskId),
            set: (taskId, slot) => store.setSandboxSlot(taskId, slot),
          },
          warm: env.SANDBOX_POOL_SIZE,
          logger: log,
        })
      : new DockerSandbox(sandboxOptionsFromEnv(env, log)));
  const info = await sandbox.ensure();
  log.info(
    { container: info.name, containerId: info.containerId.slice(0, 12), image: info.image, created: info.created },
    'sandbox ready',
  );

  const stepQueueNameForMe = stepQueueName(workerId);
  const stepQueue = new Queue(stepQueueNameForMe, queueOptions(connection, prefix));
  const dispatcher = new StepDispatcher(stepQueue, store, connection, prefix, deathWatch, log);
  const running = new Map<string, AbortController>();
  const leases = new Map<string, AbortController>();
  /** Step runs and task runs in progress in this process, by job id (see runStep and runTask). */
  const stepRuns = new Map<string, Promise<StepOutcome>>();
  const taskRuns = new Map<string, Promise<unknown>>();
  let restartsSeen = sandbox.restarts;

  const stepWorker = new Worker(stepQueueNameForMe, async (job: Job) => runStep(job), {
    connection: blockingSteps,
    prefix,
    concurrency: Math.max(2, env.WORKER_CONCURRENCY * 2),
    lockDuration: env.WORKER_LOCK_MS,
    stalledInterval: env.WORKER_STALLED_INTERVAL_MS,
    // A Redis outage longer than the lock makes every running step "stalled"; re-delivery is
    // harmless (runStep answers it without running the command again), failing it is not.
    maxStalledCount: 3,
  });
  stepWorker.on('completed', (job, rv) => {
    dispatcher.onCompleted(job, rv);
    // The job's return value holds the outcome now; the record was only for a run that could not complete its job.
    const data = job.data as Partial<StepJobData>;
    if (typeof data.taskId === 'string' && typeof data.stepIndex === 'number')
      void store.forgetStepOutcome(data.taskId, data.stepIndex).catch(() => undefined);
  });
  stepWorker.on('failed', (job, err) => dispatcher.onFailed(job, err));
  stepWorker.on('error', (err) => log.error({ err }, 'step worker error'));

  /**
   * A step job may be delivered again while or after it ran: when Redis is away for longer than
   * the lock, BullMQ re-queues running jobs as stalled, and the run that finished meanwhile
   * cannot complete its job. Its command must not run twice: a delivery during the run waits
   * for it, a later one gets the outcome recorded with the step.
   */
  async function runStep(job: Job): Promise<StepOutcome> {
    const parsed = StepJobData.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid step payload: ${parsed.error.message}`);
    const key = job.id ?? stepJobId(parsed.data.taskId, parsed.data.stepIndex);
    const inFlight = stepRuns.get(key);
    if (inFlight) return inFlight;
    const run = (async () => {
      // A first delivery cannot have run before; only a retry or a stalled re-delivery can.
      if (job.attemptsMade === 0 && (job.stalledCounter ?? 0) === 0) return executeStep(job, parsed.data);
      const recorded = StepOutcome.safeParse(await store.stepOutcome(parsed.data.taskId, parsed.data.stepIndex));
      if (recorded.success) {
        log.warn(
          { taskId: parsed.data.taskId, step: parsed.data.stepIndex },
          'step delivered again after it finished; answering from its record',
        );
        return recorded.data;
      }
      return executeStep(job, parsed.data);
    })();
    stepRuns.set(key, run);
    try {
      return await run;
    } finally {
      if (stepRuns.get(key) === run) stepRuns.delete(key);
    }
  }

  async function executeStep(job: Job, { taskId, stepIndex, action }: StepJobData): Promise<StepOutcome> {
    const attempts = job.attemptsMade + 1;
    void store
      .setStep(taskId, {
        index: stepIndex,
        action: action.action,
        status: 'running',
        attempts,
        queue: stepQueueNameForMe,
      })
      .catch(() => undefined);
    const signal = running.get(taskId)?.signal;
    const started = performance.now();
    let outcome: StepOutcome;
    try {
      outcome = await sandbox.run(taskId, action, signal ? { signal } : {});
    } catch (err) {
      const e = err as Error & { retryable?: boolean };
      log.warn(
        { taskId, step: stepIndex, action: action.action, attempt: attempts, err: e },
        'step failed; it will retry if attempts remain',
      );
      await store.setStep(taskId, {
        index: stepIndex,
        action: action.action,
        status: 'failed',
        attempts,
        queue: stepQueueNameForMe,
      });
      noteRestarts();
      if (e.retryable === false) throw new UnrecoverableError(e.message);
      throw err;
    }
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    noteRestarts();
    log.debug(
      { taskId, step: stepIndex, action: action.action, ok: outcome.ok, durationMs, attempt: attempts },
      'step finished',
    );
    const exitCode = outcome.ok ? exitCodeOf(outcome.result) : undefined;
    // One round trip: the step's record, its outcome and the duration histogram.
    await store.completeStep(
      taskId,
      {
        index: stepIndex,
        action: action.action,
        status: 'completed',
        attempts,
        durationMs,
        ...(exitCode !== undefined ? { exitCode } : {}),
        ...(outcome.ok ? {} : { error: outcome.error }),
        queue: stepQueueNameForMe,
      },
      outcome,
    );
    return outcome;
  }

  function noteRestarts(): void {
    const now = sandbox.restarts;
    if (now > restartsSeen) {
      void store.incrementCounter('containerRestarts', now - restartsSeen).catch(() => undefined);
      restartsSeen = now;
    }
  }

  /**
   * A task job delivered again while its first run is still going here (its lock expired while
   * Redis was away) waits for that run to wind down, then resumes from the checkpoint like any
   * retry: two loops of one task must never dispatch steps side by side.
   */
  async function runTask(job: Job): Promise<unknown> {
    const key = job.id ?? '';
    const previous = taskRuns.get(key);
    if (previous) {
      log.warn({ taskId: key }, 'task delivered again while it still runs here; waiting for the first run');
      await previous.catch(() => undefined);
    }
    const run = processTask(
      { env, workerId, store, sandbox, dispatcher, logger: log, running, leases, ...(provider ? { provider } : {}) },
      job,
    );
    taskRuns.set(key, run);
    try {
      return await run;
    } finally {
      if (taskRuns.get(key) === run) taskRuns.delete(key);
    }
  }

  const taskWorker = new Worker(AGENT_QUEUE, async (job: Job) => runTask(job), {
    connection: blockingAgent,
    prefix,
    concurrency: env.WORKER_CONCURRENCY,
    lockDuration: env.WORKER_LOCK_MS,
    stalledInterval: env.WORKER_STALLED_INTERVAL_MS,
    // A task whose worker died resumes elsewhere; only a task that keeps killing workers fails.
    maxStalledCount: 3,
  });
  taskWorker.on('error', (err) => log.error({ err }, 'task worker error'));
  // The lock is gone (Redis was away for longer than it lasts): another worker may already be
  // resuming the task, so this one stops working on it (see processTask).
  taskWorker.on('lockRenewalFailed', (jobIds: string[]) => {
    for (const id of jobIds) {
      const lease = leases.get(id);
      if (!lease || lease.signal.aborted) continue;
      log.warn({ taskId: id }, 'lost the lock of a running task; stopping it here so it resumes from its checkpoint');
      lease.abort(new Error('the task lock was lost'));
    }
  });
  taskWorker.on('failed', (job, err) => {
    if (!job) return;
    if (!isFinalFailure(job, err)) return;
    const taskId = (job.data as { taskId?: string }).taskId;
    if (!taskId) return;
    void (async () => {
      const status = await store.status(taskId);
      if (status === 'queued' || status === 'running') {
        await store.setStatus(taskId, 'failed', { error: { code: 'internal', message: err.message } });
        if (sandbox.releaseTask) {
          // Keep what the task wrote before its per-task sandbox goes.
          const { files } = await sandbox
            .exportFiles(taskId, { maxBytes: env.RESULT_MAX_BYTES })
            .catch(() => ({ files: [] }));
          if (files.length > 0) await store.saveFiles(taskId, files);
          await sandbox.releaseTask(taskId);
        }
      }
    })().catch((e: unknown) => log.error({ err: e, taskId }, 'could not record a failed task'));
  });

  // Cancel: the API flags the task and publishes its id; whoever runs it aborts it.
  await subscriber.subscribe(store.keys.cancelChannel());
  subscriber.on('message', (_channel, taskId: string) => {
    const controller = running.get(taskId);
    if (!controller) return;
    log.info({ taskId }, 'cancel requested');
    controller.abort();
    void sandbox
      .cancelTask(taskId)
      .catch((err: unknown) => log.warn({ err, taskId }, 'cancel: could not kill commands'));
  });

  // Heartbeat, and reaping of dead workers' step queues by whichever worker notices first.
  // No beat is queued while Redis is away (it would land late with an old timestamp); the first
  // beat after a reconnect goes out at once.
  const beat = async () => {
    if (connection.status !== 'ready') return;
    await registry.beat(
      {
        id: workerId,
        host: os.hostname(),
        pid: process.pid,
        startedAt,
        containerId: info.containerId,
        containerName: info.name,
        image: info.image,
        running: [...running.keys()],
      },
      staleMs,
    );
  };
  const beatNow = () => void beat().catch((err: unknown) => log.warn({ err }, 'heartbeat failed'));
  const startedAt = new Date().toISOString();
  await beat();
  const heartbeat = setInterval(beatNow, env.WORKER_HEARTBEAT_MS);
  connection.on('ready', beatNow);
  let reaping = false;
  const reap = async () => {
    if (reaping) return;
    reaping = true;
    try {
      for (const id of await deathWatch.dead()) {
        if (id === workerId) continue;
        if (await registry.reap(id, connection)) log.info({ deadWorker: id }, "reaped a dead worker's step queue");
      }
    } finally {
      reaping = false;
    }
  };
  const reaper = setInterval(
    () => void reap().catch((err: unknown) => log.warn({ err }, 'reaper failed')),
    env.WORKER_HEARTBEAT_MS * 3,
  );
  const retentionMs = env.SANDBOX_RETENTION_HOURS * 3_600_000;
  const cleanup =
    retentionMs > 0
      ? setInterval(() => void sandbox.cleanupExpired(retentionMs).catch(() => undefined), 3_600_000)
      : undefined;
  if (retentionMs > 0) void sandbox.cleanupExpired(retentionMs).catch(() => undefined);

  log.info({ concurrency: env.WORKER_CONCURRENCY, stepQueue: stepQueueNameForMe }, 'worker started');

  let closing: Promise<void> | undefined;
  return {
    workerId,
    sandbox,
    close(graceMs = 30_000) {
      closing ??= (async () => {
        clearInterval(heartbeat);
        clearInterval(reaper);
        connection.off('ready', beatNow);
        deathWatch.close();
        if (cleanup) clearInterval(cleanup);
        log.info({ running: running.size }, 'worker stopping');
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
