import { UnrecoverableError, type Job } from 'bullmq';
import { createProvider, initialState, runAgent, type AgentState, type ModelProvider } from '@research/agent';
import type { Env, Logger } from '@research/config';
import { actionOf, type TaskEvent, type TaskProgress, type TaskResult } from '@research/contracts';
import { TaskJobData, stepLogLine, type TaskStore } from '@research/queue';
import type { Sandbox } from '@research/sandbox';
import { LeaseLostError, taskFence, type StepDispatcher } from './steps.js';

export interface TaskContext {
  env: Env;
  workerId: string;
  store: TaskStore;
  sandbox: Sandbox;
  dispatcher: StepDispatcher;
  logger: Logger;
  provider?: ModelProvider;
  /** Abort controllers of the tasks running here, for cancel. */
  running: Map<string, AbortController>;
  /** Aborted when this worker lost a running task's lock: another worker may be resuming it. */
  leases: Map<string, AbortController>;
}

/** Minimum gap between two snapshots of a running task's files (the API serves them). */
const SNAPSHOT_EVERY_MS = 2_000;

/** Processes one task job: resumes from its checkpoint, runs the loop, keeps the files, sets the final status. */
export async function processTask(ctx: TaskContext, job: Job): Promise<{ status: string; summary: string }> {
  const parsed = TaskJobData.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`invalid task payload: ${parsed.error.message}`);
  const { taskId, request } = parsed.data;
  const { env, store, sandbox, workerId } = ctx;
  const log = ctx.logger.child({ taskId, workerId });

  // One round trip: these go out together on the store's connection.
  const [current, cancelRequested, checkpoint] = await Promise.all([
    store.status(taskId),
    store.isCancelRequested(taskId),
    store.loadCheckpoint<AgentState>(taskId),
  ]);
  if (current === 'cancelled' || current === 'completed' || current === 'failed') {
    return { status: current, summary: 'already finished' };
  }
  if (cancelRequested) {
    await store.setStatus(taskId, 'cancelled', {
      error: { code: 'cancelled', message: 'cancelled before it started' },
    });
    return { status: 'cancelled', summary: 'cancelled before it started' };
  }

  const { startedAt } = await store.markRunning(taskId, workerId, new Date().toISOString());
  const maxSteps = request.maxSteps ?? env.TASK_MAX_STEPS;
  const deadline = Date.parse(startedAt) + (request.timeoutSeconds ?? env.TASK_TIMEOUT_SECONDS) * 1_000;
  const state = checkpoint ?? initialState(request, { format: env.TOOL_CALL_FORMAT });
  if (checkpoint)
    log.info({ nextStep: checkpoint.nextStep, pending: checkpoint.pending.length }, 'resuming from checkpoint');
  // Steps from here on were never dispatched: checkpoints are written before their steps go out.
  const firstFreshStep = state.nextStep;
  // Whether the workspace may hold files or processes of this task (a resumed task may: an earlier run touched it).
  let touched = checkpoint !== undefined;
  let ranCommand = checkpoint !== undefined;

  // Events, progress and log lines go out in the background, in order per connection; the loop
  // does not wait for them. They are flushed before the final status, so nothing is lost or late.
  const inFlight = new Set<Promise<unknown>>();
  const background = (write: Promise<unknown>) => {
    const tracked = write
      .catch((err: unknown) => log.warn({ err }, 'a background write failed'))
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  const flush = async () => {
    while (inFlight.size > 0) await Promise.all([...inFlight]);
  };

  // Checkpoints and dispatched steps are written only while this run holds the task's lock.
  const fence = taskFence(job);

  const controller = new AbortController();
  ctx.running.set(taskId, controller);
  // Once the lease is lost, this run writes nothing more the task's next owner would read (no
  // events, no checkpoint, no status): it only winds down, letting a step in flight finish.
  const lease = new AbortController();
  ctx.leases.set(taskId, lease);
  const owned = () => !lease.signal.aborted;
  const loseLease = (err: Error) => {
    if (owned())
      log.warn({ err }, "the task lock is no longer this run's; stopping it here so it resumes from its checkpoint");
    lease.abort(err);
  };
  /**
   * Sets the final status, then kills what the task's commands left running in the background
   * (a server for a later step, or a fork bomb holding the container's pids limit): once the
   * task is over they may neither starve the other tasks sharing the container nor pile up.
   */
  const settle = async (...args: Parameters<TaskStore['setStatus']>): Promise<void> => {
    await flush();
    await store.setStatus(...args);
    if (ranCommand)
      await sandbox
        .cancelTask(taskId)
        .catch((err: unknown) => log.warn({ err }, "could not stop the finished task's leftover processes"));
    // Per-task sandboxes: the files are kept in Redis by now, the container and volume can go.
    await sandbox
      .releaseTask?.(taskId)
      .catch((err: unknown) => log.warn({ err }, "could not release the task's sandbox"));
  };
  const provider = ctx.provider ?? createProvider(env, log);
  let progress: TaskProgress = { step: state.nextStep - state.pending.length, maxSteps, phase: 'starting' };
  const setProgress = (p: Partial<TaskProgress>) => {
    progress = { ...progress, ...p };
    background(job.updateProgress(progress));
    background(store.setProgress(taskId, progress));
  };
  // The first snapshot waits SNAPSHOT_EVERY_MS: a short task is only copied once, at its end.
  let lastSnapshot = Date.now();
  let snapshotting: Promise<void> | undefined;
  const snapshot = async (force: boolean) => {
    if (!touched) return;
    if (!force && Date.now() - lastSnapshot < SNAPSHOT_EVERY_MS) return;
    lastSnapshot = Date.now();
    await snapshotting;
    snapshotting = saveFiles(ctx, taskId).catch((err: unknown) => log.warn({ err }, 'file snapshot failed'));
    await snapshotting;
  };

  // At the deadline the loop stops, but a step in flight would run on to its own command timeout
  // (minutes): kill the task's commands, so the budget holds for what runs in the sandbox too.
  const overrun = setTimeout(
    () => {
      log.info('task out of time; killing its running commands');
      void sandbox
        .cancelTask(taskId)
        .catch((err: unknown) => log.warn({ err }, 'could not kill the commands of a task out of time'));
    },
    Math.min(Math.max(0, deadline - Date.now()), 2 ** 31 - 1),
  ).unref();

  setProgress({ phase: 'thinking' });
  try {
    const outcome = await runAgent({
      state,
      provider,
      format: env.TOOL_CALL_FORMAT,
      maxSteps,
      deadline,
      signal: AbortSignal.any([controller.signal, lease.signal]),
      logger: log,
      ...(request.model ? { model: request.model } : {}),
      steps: {
        run: async (call, index, signal) => {
          // Past a lost lease nothing new goes out: a step this run dispatched now could run
          // beside the same step dispatched by the task's next owner.
          if (!owned()) throw new LeaseLostError(`lost the lock of task ${taskId}; it resumes from its checkpoint`);
          setProgress({ step: index + 1, phase: 'running-step' });
          const { effects } = actionOf(call.args.action);
          if (effects.writesWorkspace || effects.runsCode) touched = true;
          if (effects.runsCode) ranCommand = true;
          const started = performance.now();
          // With the lease lost, the step in flight runs on and records its outcome for whoever
          // resumes the task; this run stops waiting for it.
          const result = await untilLost(
            lease.signal,
            ctx.dispatcher.dispatch(job, taskId, call, index, signal, index >= firstFreshStep),
          ).catch((err: unknown) => {
            // Refused by the fence: the lock is someone else's already, though no renewal has failed yet.
            if (err instanceof LeaseLostError) loseLease(err);
            throw err;
          });
          const durationMs = Math.round(performance.now() - started);
          background(job.log(stepLogLine(index, call.args.action, result, durationMs)));
          setProgress({ phase: 'thinking' });
          if (effects.writesWorkspace) void snapshot(false);
          return result;
        },
      },
      onEvent: (event: TaskEvent) => {
        if (owned()) background(store.appendEvent(taskId, event));
      },
      onCheckpoint: async (s: AgentState) => {
        if (!owned()) return;
        if (!(await store.saveCheckpointFenced(taskId, s, fence))) {
          const err = new LeaseLostError(
            `task ${taskId}: the lock is no longer this run's; its checkpoint was not saved`,
          );
          loseLease(err);
          throw err;
        }
      },
    });
    if (!owned()) throw new LeaseLostError(`lost the lock of task ${taskId}; it resumes from its checkpoint`);

    setProgress({ phase: 'finishing' });
    await snapshot(true);
    const files = touched ? ((await store.listFiles(taskId)) ?? []) : [];
    const result: TaskResult = { summary: outcome.summary, files: files.map(({ path, size }) => ({ path, size })) };
    setProgress({ phase: 'done' });
    switch (outcome.reason) {
      case 'answer':
        await settle(taskId, 'completed', { result });
        return { status: 'completed', summary: outcome.summary };
      case 'cancelled':
        await settle(taskId, 'cancelled', { result, error: { code: 'cancelled', message: 'cancelled by request' } });
        throw new UnrecoverableError('cancelled by request');
      case 'max_steps':
        await settle(taskId, 'failed', {
          result,
          error: { code: 'max_steps', message: `stopped after ${maxSteps} steps without a final answer` },
        });
        throw new UnrecoverableError(`stopped after ${maxSteps} steps`);
      case 'timeout':
        await settle(taskId, 'failed', {
          result,
          error: {
            code: 'timeout',
            message: `task exceeded its ${Math.round((deadline - Date.parse(startedAt)) / 1000)} s budget`,
          },
        });
        throw new UnrecoverableError('task timed out');
    }
  } catch (err) {
    if (err instanceof UnrecoverableError || !owned()) throw err;
    const e = err as Error;
    if (e.name === 'LlmError' || e.name === 'ConfigError') {
      // The provider already retried; another attempt would hit the same wall.
      await snapshot(true).catch(() => undefined);
      await settle(taskId, 'failed', { error: { code: 'llm_error', message: e.message } });
      throw new UnrecoverableError(e.message);
    }
    log.warn({ err: e, attempt: job.attemptsMade + 1 }, 'task attempt failed; it will resume from its checkpoint');
    throw err;
  } finally {
    clearTimeout(overrun);
    ctx.running.delete(taskId);
    ctx.leases.delete(taskId);
  }
}

/** Resolves with `work`, or rejects as soon as the task's lease is lost. */
function untilLost<T>(lease: AbortSignal, work: Promise<T>): Promise<T> {
  if (lease.aborted) return Promise.reject(new LeaseLostError('the task lock was lost'));
  return new Promise<T>((resolve, reject) => {
    const onLost = () => reject(new LeaseLostError('the task lock was lost'));
    lease.addEventListener('abort', onLost, { once: true });
    work.then(resolve, reject).finally(() => lease.removeEventListener('abort', onLost));
  });
}

/** Copies the task's files into Redis (size-capped), so they outlive the worker and its container. */
async function saveFiles(ctx: TaskContext, taskId: string): Promise<void> {
  const { files } = await ctx.sandbox.exportFiles(taskId, { maxBytes: ctx.env.RESULT_MAX_BYTES });
  await ctx.store.saveFiles(taskId, files);
}
