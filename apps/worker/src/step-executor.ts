import { type Job, UnrecoverableError } from 'bullmq';
import type { Logger } from '@research/config';
import { actionOf, exitCodeOf, type StepOutcome } from '@research/contracts';
import { asJobError, StepJobData, type StepJobResult, type TaskStore, stepJobId, stepJobResult } from '@research/queue';
import type { Sandbox } from '@research/sandbox';
import type { ActionRunners } from './action-runner.js';
import { LiveOutputSink } from './live-output.js';

export interface StepExecutorOptions {
  store: TaskStore;
  /** The worker's sandbox (its container restarts are counted here). */
  sandbox: Sandbox;
  /** Who runs an action, by the catalog's `runsIn`: the sandbox's actions there, the web ones in this process. */
  runners: ActionRunners;
  /** The step queue this executor consumes (recorded with each step, for a worker taking it over). */
  queueName: string;
  logger: Logger;
  /** The abort signal of task `taskId`'s run here, if it runs here: a cancel kills its command. */
  signalOf: (taskId: string) => AbortSignal | undefined;
}

/**
 * Runs the step jobs of this worker's step queue — each where its catalog entry says it runs:
 * in the sandbox, or in this process (the web actions) — recording each step's outcome (the one
 * copy of it) before the job completes, and never running a step twice.
 */
export class StepExecutor {
  /** Step runs in progress in this process, by job id (see `process`). */
  private readonly inFlight = new Map<string, Promise<StepOutcome>>();
  /**
   * The outcome of each step job this process ran, for its `completed` event: the job returns
   * only a summary, and the dispatcher waiting in this process gets the outcome from here
   * instead of reading back the record just written. Keyed by the job object BullMQ passes to
   * both, so an entry goes with it.
   */
  private readonly finished = new WeakMap<Job, StepOutcome>();
  private restartsSeen: number;
  private readonly log: Logger;

  constructor(private readonly options: StepExecutorOptions) {
    this.restartsSeen = options.sandbox.restarts;
    this.log = options.logger;
  }

  /** The step Worker's processor. */
  async process(job: Job): Promise<StepJobResult> {
    const outcome = await this.run(job);
    this.finished.set(job, outcome);
    return stepJobResult(outcome);
  }

  /** The outcome of a step job this process just ran (for its `completed` event). */
  outcomeOf(job: Job): StepOutcome | undefined {
    return this.finished.get(job);
  }

  /**
   * A step job may be delivered again while or after it ran: when Redis is away for longer than
   * the lock, BullMQ re-queues running jobs as stalled, and the run that finished meanwhile
   * cannot complete its job. Its command must not run twice: a delivery during the run waits
   * for it, a later one gets the outcome recorded with the step.
   */
  private async run(job: Job): Promise<StepOutcome> {
    const parsed = StepJobData.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid step payload: ${parsed.error.message}`);
    const { taskId, stepIndex } = parsed.data;
    const key = job.id ?? stepJobId(taskId, stepIndex);
    const inFlight = this.inFlight.get(key);
    if (inFlight) return inFlight;
    const run = (async () => {
      // A first delivery cannot have run before; only a retry or a stalled re-delivery can.
      if (job.attemptsMade === 0 && (job.stalledCounter ?? 0) === 0) return this.execute(job, parsed.data);
      const recorded = await this.options.store.steps.outcome(taskId, stepIndex);
      if (recorded) {
        this.log.warn({ taskId, step: stepIndex }, 'step delivered again after it finished; answering from its record');
        return recorded;
      }
      return this.execute(job, parsed.data);
    })();
    this.inFlight.set(key, run);
    try {
      return await run;
    } finally {
      if (this.inFlight.get(key) === run) this.inFlight.delete(key);
    }
  }

  private async execute(job: Job, { taskId, stepIndex, action }: StepJobData): Promise<StepOutcome> {
    const { store, runners, queueName: queue } = this.options;
    const attempts = job.attemptsMade + 1;
    const record = { index: stepIndex, action: action.action, attempts, queue };
    void store.steps.set(taskId, { ...record, status: 'running' }).catch(() => undefined);
    const signal = this.options.signalOf(taskId);
    const started = performance.now();
    const live = new LiveOutputSink(store, job, taskId, stepIndex, this.log);
    let outcome: StepOutcome;
    try {
      // The one place that decides where an action runs: its catalog entry.
      outcome = await runners[actionOf(action.action).runsIn].run({
        taskId,
        stepIndex,
        action,
        lastAttempt: attempts >= (job.opts.attempts ?? 1),
        onOutput: live.onOutput,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      await live.drain();
      const e = err as Error;
      const where = { taskId, step: stepIndex, action: action.action, attempt: attempts };
      // A cancel aborts the step on purpose: not a failure anyone needs to look into.
      if (signal?.aborted) this.log.info({ ...where, err: e.message }, 'step stopped: its task was cancelled');
      else this.log.warn({ ...where, err: e }, 'step failed; it will retry if attempts remain');
      await store.steps.set(taskId, { ...record, status: 'failed' });
      this.noteRestarts();
      // A failure another attempt cannot fix (a refused path, a missing image) spends no attempt.
      throw asJobError(err);
    }
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    await live.drain();
    this.noteRestarts();
    const exitCode = outcome.ok ? exitCodeOf(outcome.result) : undefined;
    this.log.debug(
      { taskId, step: stepIndex, action: action.action, ok: outcome.ok, durationMs, attempt: attempts },
      'step finished',
    );
    // One round trip: the step's record, its outcome and the duration histogram.
    await store.steps.complete(
      taskId,
      {
        ...record,
        status: 'completed',
        durationMs,
        ...(exitCode !== undefined ? { exitCode } : {}),
        ...(outcome.ok ? {} : { error: outcome.error }),
      },
      outcome,
    );
    return outcome;
  }

  /** Container restarts the sandbox made (a step found it gone), for the API's metrics. */
  private noteRestarts(): void {
    const now = this.options.sandbox.restarts;
    if (now > this.restartsSeen) {
      void this.options.store.stats.increment('containerRestarts', now - this.restartsSeen).catch(() => undefined);
      this.restartsSeen = now;
    }
  }
}
