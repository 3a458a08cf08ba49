import { type Job, UnrecoverableError } from 'bullmq';
import {
  type AgentState,
  createDefaultRegistry,
  createProvider,
  initialState,
  LlmError,
  type ModelProvider,
  runAgent,
} from '@research/agent';
import { ConfigError, type Env, type Logger } from '@research/config';
import {
  actionOf,
  FINAL_STATUSES,
  type TaskEvent,
  type TaskProgress,
  type TaskResult,
  type TaskStatus,
} from '@research/contracts';
import {
  asJobError,
  expiryMessage,
  isExpired,
  type Footprint,
  type ListedFile,
  isRetryable,
  stepUsageOf,
  type StatusDetails,
  stepLogLine,
  type TaskJobData,
  type TaskStore,
  taskFence,
  type Transition,
  totalBytes,
} from '@research/queue';
import type { ExportOptions, Sandbox } from '@research/sandbox';
import { LeaseLostError, StorageQuotaError } from './errors.js';
import { InputFileError, placeInputFiles } from './input-files.js';
import type { StepDispatcher } from './step-dispatcher.js';
import type { Ending } from './task-runner.js';

/** A run's controls, held by the task runner for the cancel channel and the lock-loss event. */
export interface RunControl {
  /** Aborted when a cancel of the task is requested. */
  cancel: AbortController;
  /** Aborted when this worker lost the task's lock: another worker may be resuming it. */
  lease: AbortController;
}

/** What one run of a task gets from the task runner. */
export interface TaskRunContext {
  env: Env;
  workerId: string;
  store: TaskStore;
  sandbox: Sandbox;
  dispatcher: StepDispatcher;
  logger: Logger;
  provider?: ModelProvider;
  /** The web tools are offered (a search provider is configured): registry and system prompt. */
  web: boolean;
  control: RunControl;
  /** What the run reads first (`readStart`), sent by the runner beside its slot request. */
  startReads: Promise<StartReads>;
  /**
   * The start, when the runner sent it beside the reads (see TaskRunner.process); else the run
   * starts the task itself once the reads allow it.
   */
  started?: Promise<Transition>;
  /** Ends the task (the runner's `end`); returns the status it has then. */
  end: (to: TaskStatus, details: StatusDetails, ending: Ending) => Promise<TaskStatus>;
}

export interface TaskRunResult {
  status: TaskStatus;
  summary: string;
}

/** What a run reads before it starts: the task's status, its cancel flag, its checkpoint and its footprint. */
export type StartReads = [TaskStatus | undefined, boolean, AgentState | undefined, Footprint];

/** The reads a run starts with, in one round trip: they go out together on the store's connection. */
export function readStart(store: TaskStore, taskId: string): Promise<StartReads> {
  return Promise.all([
    store.lifecycle.status(taskId),
    store.cancels.isRequested(taskId),
    store.records.checkpoint<AgentState>(taskId),
    store.footprint.get(taskId),
  ]);
}

/** Minimum gap between two snapshots of a running task's files (the API serves them). */
const SNAPSHOT_EVERY_MS = 2_000;

/** Runs one task job: resumes from its checkpoint, runs the loop, keeps the files, ends the task. */
export async function runTask(
  ctx: TaskRunContext,
  job: Job,
  { taskId, request, createdAt, inputFiles }: TaskJobData,
): Promise<TaskRunResult> {
  const { env, store, sandbox, workerId, control } = ctx;
  const log = ctx.logger.child({ taskId, workerId });

  const [current, cancelRequested, checkpoint, kept] = await ctx.startReads;
  // What the task keeps in Redis, as the latest event write counted it: held to TASK_MAX_REDIS_BYTES
  // before each step, so a task that prints without end fails instead of filling Redis (noeviction).
  let footprint: Footprint = kept;
  const capBytes = env.TASK_MAX_REDIS_BYTES;
  if (current && FINAL_STATUSES.includes(current)) return { status: current, summary: 'already finished' };
  // Whether the workspace may hold files or processes of this task (a resumed task may: an earlier run touched it).
  let touched = checkpoint !== undefined;
  let ranCommand = checkpoint !== undefined;
  if (cancelRequested) {
    const status = await ctx.end(
      'cancelled',
      { error: { code: 'cancelled', message: 'cancelled before it started' } },
      { ranHere: true, ranCommand, keepFiles: false },
    );
    return { status, summary: 'cancelled before it started' };
  }

  // The API's expiry check may not have run yet (a backlog of checks, or the API down): the
  // deadline is the same here, checked before the task starts (a task with a TTL is never
  // started beside its reads).
  if (isExpired(request.ttlSeconds, createdAt) && request.ttlSeconds !== undefined) {
    const expired = await store.lifecycle.expire(taskId, expiryMessage(request.ttlSeconds));
    if (expired.ok || (expired.status && FINAL_STATUSES.includes(expired.status))) {
      log.info({ ttlSeconds: request.ttlSeconds }, 'the task expired before it started; not running it');
      return { status: expired.ok ? 'failed' : expired.status!, summary: 'expired' };
    }
  }

  const started = await (ctx.started ?? store.lifecycle.start(taskId, { workerId }));
  // Refused: the task ended meanwhile (cancelled while its job was on its way here), or its
  // record is gone. Either way there is nothing to run.
  if (!started.ok) {
    if (started.status === undefined) throw new UnrecoverableError(`task ${taskId} has no record`);
    log.info({ status: started.status }, 'the task ended before this run started; not running it');
    return { status: started.status, summary: 'already finished' };
  }
  const startedAt = started.startedAt ?? new Date().toISOString();
  const maxSteps = request.maxSteps ?? env.TASK_MAX_STEPS;
  const deadline = Date.parse(startedAt) + (request.timeoutSeconds ?? env.TASK_TIMEOUT_SECONDS) * 1_000;
  const state = checkpoint ?? initialState(request, { format: env.TOOL_CALL_FORMAT, web: ctx.web });
  if (checkpoint)
    log.info({ nextStep: checkpoint.nextStep, pending: checkpoint.pending.length }, 'resuming from checkpoint');
  // Steps from here on were never dispatched: checkpoints are written before their steps go out.
  const firstFreshStep = state.nextStep;

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

  // Once the lease is lost, this run writes nothing more the task's next owner would read (no
  // events, no checkpoint, no status): it only winds down, letting a step in flight finish.
  const lease = control.lease;
  const owned = () => !lease.signal.aborted;
  const loseLease = (err: Error) => {
    if (owned())
      log.warn({ err }, "the task lock is no longer this run's; stopping it here so it resumes from its checkpoint");
    lease.abort(err);
  };
  /** Ends the task once the background writes are out, so its stream ends with the final status. */
  const settle = async (to: TaskStatus, details: StatusDetails): Promise<TaskStatus> => {
    await flush();
    return ctx.end(to, details, { ranHere: true, ranCommand, keepFiles: false });
  };
  const provider = ctx.provider ?? createProvider(env, log);
  let progress: TaskProgress = { step: state.nextStep - state.pending.length, maxSteps, phase: 'starting' };
  const setProgress = (p: Partial<TaskProgress>) => {
    const { step } = progress;
    progress = { ...progress, ...p };
    background(store.records.setProgress(taskId, progress));
    // The dashboard's copy (BullMQ's job progress: a script and a queue event each time) follows
    // the steps and the end; its ring is drawn from the step, so a turn of the model between two
    // steps would change nothing there.
    if (progress.phase !== 'thinking' || progress.step !== step) background(job.updateProgress(progress));
  };
  // The first snapshot waits SNAPSHOT_EVERY_MS: a short task is only copied once, at its end.
  let lastSnapshot = Date.now();
  let snapshotting: Promise<ListedFile[] | undefined> | undefined;
  /**
   * Copies the files now (`force`) or when the last copy is old enough; the list kept, or
   * undefined when none was made. The `final` copy, once no step runs any more, first kills what
   * the task's commands left running, in the same request to the sandbox: the copy is then the
   * task's last state, and its end needs no cancel of its own.
   */
  const snapshot = async (force: boolean, final = false): Promise<ListedFile[] | undefined> => {
    if (!touched) return undefined;
    if (!force && Date.now() - lastSnapshot < SNAPSHOT_EVERY_MS) return undefined;
    lastSnapshot = Date.now();
    await snapshotting;
    // Files are kept within what the cap leaves after the events and outcomes.
    const maxBytes =
      capBytes > 0
        ? Math.min(env.RESULT_MAX_BYTES, Math.max(0, capBytes - footprint.writtenBytes))
        : env.RESULT_MAX_BYTES;
    const stopProcesses = final && ranCommand;
    snapshotting = saveFiles(ctx, taskId, { maxBytes, stopProcesses }).then(
      (kept) => {
        // Nothing its commands started runs any more: the end has nothing left to kill.
        if (stopProcesses) ranCommand = false;
        return kept;
      },
      (err: unknown) => {
        log.warn({ err }, 'file snapshot failed');
        return undefined;
      },
    );
    return snapshotting;
  };

  // Model usage goes to the store when it changed (a checkpoint after the final answer has none new).
  let usageRecorded = '';
  const recordModelUsage = (s: AgentState) => {
    const usage = modelUsageOf(s);
    const key = `${usage.modelCalls}:${usage.promptTokens}:${usage.completionTokens}`;
    if (key === usageRecorded) return;
    usageRecorded = key;
    background(store.usage.recordModel(taskId, usage));
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

  try {
    // Before the first step, once: a checkpoint is only written after the files were placed
    // (and their copy in Redis dropped), so a resumed task finds them in its directory.
    if (!checkpoint) {
      const files = request.files ?? (inputFiles ? await store.inputs.load(taskId) : undefined);
      if (files && files.length > 0) {
        touched = true;
        const placed = await placeInputFiles(sandbox, taskId, files, control.cancel.signal);
        if (placed.ranCommand) ranCommand = true;
        log.info({ files: files.length }, 'input files placed in the task directory');
      }
      if (inputFiles) await store.inputs.drop(taskId);
    }
    setProgress({ phase: 'thinking' });
    const outcome = await runAgent({
      state,
      provider,
      format: env.TOOL_CALL_FORMAT,
      maxSteps,
      deadline,
      signal: AbortSignal.any([control.cancel.signal, lease.signal]),
      logger: log,
      registry: createDefaultRegistry({ logger: log, web: ctx.web }),
      // The dispatcher answers a step index that already ran from its record, so a resumed run
      // replays the turn's calls without running them again: the state after each step is not
      // written (one fenced write of the whole state less per step).
      checkpointSteps: false,
      ...(request.model ? { model: request.model } : {}),
      steps: {
        run: async (call, index, signal) => {
          // Past a lost lease nothing new goes out: a step this run dispatched now could run
          // beside the same step dispatched by the task's next owner.
          if (!owned()) throw new LeaseLostError(`lost the lock of task ${taskId}; it resumes from its checkpoint`);
          if (capBytes > 0 && totalBytes(footprint) > capBytes)
            throw new StorageQuotaError(
              `task keeps ${totalBytes(footprint)} bytes in Redis, past TASK_MAX_REDIS_BYTES (${capBytes})`,
            );
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
          background(store.usage.recordStep(taskId, index, stepUsageOf(result)));
          setProgress({ phase: 'thinking' });
          if (effects.writesWorkspace) void snapshot(false);
          return result;
        },
      },
      onEvent: (event: TaskEvent) => {
        if (!owned()) return;
        background(
          store.events.appendAndCount(taskId, event).then((r) => {
            if (r.footprint.writtenBytes >= footprint.writtenBytes) footprint = r.footprint;
          }),
        );
      },
      onCheckpoint: async (s: AgentState) => {
        if (!owned()) return;
        recordModelUsage(s);
        if (!(await store.records.saveCheckpoint(taskId, s, fence))) {
          const err = new LeaseLostError(
            `task ${taskId}: the lock is no longer this run's; its checkpoint was not saved`,
          );
          loseLease(err);
          throw err;
        }
      },
    });
    if (!owned()) throw new LeaseLostError(`lost the lock of task ${taskId}; it resumes from its checkpoint`);

    recordModelUsage(outcome.state);
    setProgress({ phase: 'finishing' });
    // The list the final copy kept; when that copy failed, what an earlier one kept.
    const kept = await snapshot(true, true);
    const files = touched ? (kept ?? (await store.files.list(taskId)) ?? []) : [];
    const result: TaskResult = { summary: outcome.summary, files: files.map(({ path, size }) => ({ path, size })) };
    setProgress({ phase: 'done' });
    switch (outcome.reason) {
      case 'answer':
        return { status: await settle('completed', { result }), summary: outcome.summary };
      case 'cancelled':
        await settle('cancelled', { result, error: { code: 'cancelled', message: 'cancelled by request' } });
        throw new UnrecoverableError('cancelled by request');
      case 'max_steps':
        await settle('failed', {
          result,
          error: { code: 'max_steps', message: `stopped after ${maxSteps} steps without a final answer` },
        });
        throw new UnrecoverableError(`stopped after ${maxSteps} steps`);
      case 'timeout':
        await settle('failed', {
          result,
          error: {
            code: 'timeout',
            message: `task exceeded its ${Math.round((deadline - Date.parse(startedAt)) / 1000)} s budget`,
          },
        });
        throw new UnrecoverableError('task timed out');
    }
  } catch (err) {
    if (!owned()) throw err;
    if (err instanceof StorageQuotaError) {
      await snapshot(true, true).catch(() => undefined);
      await settle('failed', { error: { code: 'storage_quota_exceeded', message: err.message } });
      throw new UnrecoverableError(err.message);
    }
    if (err instanceof InputFileError) {
      await settle('failed', { error: { code: err.code, message: err.message } });
      throw new UnrecoverableError(err.message);
    }
    if (err instanceof LlmError || err instanceof ConfigError) {
      // The task's retry policy leaves model failures alone: the provider already retried the
      // request, and another attempt of the task would hit the same wall.
      await snapshot(true, true).catch(() => undefined);
      await settle('failed', { error: { code: 'llm_error', message: err.message } });
      throw new UnrecoverableError(err.message);
    }
    // Not retryable: the job fails for good now, and the task with it (the runner's onFailed).
    if (!isRetryable(err)) throw asJobError(err);
    log.warn({ err, attempt: job.attemptsMade + 1 }, 'task attempt failed; it will resume from its checkpoint');
    throw err;
  } finally {
    clearTimeout(overrun);
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
async function saveFiles(ctx: TaskRunContext, taskId: string, options: ExportOptions): Promise<ListedFile[]> {
  const { files } = await ctx.sandbox.exportFiles(taskId, options);
  return ctx.store.files.save(taskId, files);
}

/** The model usage a task's state counts so far (absolute totals: the store adds only what is new). */
function modelUsageOf(s: AgentState): { modelCalls: number; promptTokens: number; completionTokens: number } {
  return { modelCalls: s.turns, promptTokens: s.usage.promptTokens, completionTokens: s.usage.completionTokens };
}
