import { setTimeout as delay } from 'node:timers/promises';
import { Job, Queue } from 'bullmq';
import type { StepOutcome, ToolCall } from '@research/contracts';
import {
  JOBS,
  type StepJobData,
  jobOptions,
  queueOptions,
  stepJobId,
  stepQueueOwner,
  taskFence,
  type DeathWatch,
  isFinalFailure,
  type Redis,
  type TaskStore,
} from '@research/queue';
import type { Logger } from '@research/config';
import { LeaseLostError, StepFailedError } from './errors.js';

interface Waiter {
  resolve: (outcome: StepOutcome) => void;
  reject: (err: Error) => void;
}

/** How often a step being waited for is checked for having vanished from the queue. */
const WAIT_CHECK_MS = 5_000;

/** How long a dead worker's step job may still be locked; the task waits that long to take it over. */
const TAKEOVER_WAIT_MS = 60_000;

/** How often a step left with another (live) worker is checked while this task waits for it. */
const TAKEOVER_POLL_MS = 250;

/**
 * Turns tool calls into step jobs in this worker's own step queue, as children of the task job,
 * and waits for their results in-process (the same process consumes the step queue, so the
 * `completed` event arrives locally without a QueueEvents round trip).
 *
 * Step job ids are deterministic (`<taskId>-<index>`): when a task resumes (after a crash or a
 * retry), a step that already completed — in this queue or in a dead worker's — is answered from
 * its stored result instead of running again.
 */
export class StepDispatcher {
  private readonly waiters = new Map<string, Waiter>();

  constructor(
    private readonly stepQueue: Queue,
    private readonly store: TaskStore,
    /** BullMQ's connection (see runtime.ts): another worker's step queue is opened on it. */
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly deathWatch: DeathWatch,
    private readonly logger: Logger,
  ) {}

  /**
   * Wired to the step Worker's `completed` event, with the outcome when this process ran the
   * step (else it is read from the step's record, where every finished step keeps it).
   */
  onCompleted(job: Job, outcome: StepOutcome | undefined): void {
    const id = job.id;
    if (!id || !this.waiters.has(id)) return;
    if (outcome) {
      this.settle(id, (w) => w.resolve(outcome));
      return;
    }
    const { taskId, stepIndex } = job.data as Partial<StepJobData>;
    void this.recorded(id, taskId, stepIndex)
      .then((o) => this.settle(id, (w) => w.resolve(o)))
      .catch((err: Error) => this.settle(id, (w) => w.reject(err)));
  }

  /** The outcome recorded with a step whose job completed; a completed step always has one. */
  private async recorded(id: string, taskId: string | undefined, index: number | undefined): Promise<StepOutcome> {
    const outcome =
      taskId !== undefined && index !== undefined ? await this.store.steps.outcome(taskId, index) : undefined;
    if (!outcome) throw new StepFailedError(index ?? -1, `step ${id} completed but its outcome is not recorded`);
    return outcome;
  }

  /** Wired to the step Worker's `failed` event; only the last attempt fails the wait. */
  onFailed(job: Job | undefined, err: Error): void {
    if (!job?.id) return;
    if (!isFinalFailure(job)) return;
    const waiter = this.waiters.get(job.id);
    if (!waiter) return;
    this.waiters.delete(job.id);
    waiter.reject(
      new StepFailedError(
        job.data?.stepIndex ?? -1,
        `step ${job.id} failed after ${job.attemptsMade} attempts: ${err.message}`,
      ),
    );
  }

  /**
   * Runs (or finds) step `index` of the task and returns its outcome. `fresh` says the index was
   * never dispatched before (it is past the checkpoint this run started from, and checkpoints are
   * written before their steps are dispatched), so there is nothing to look up first.
   */
  async dispatch(
    taskJob: Job,
    taskId: string,
    call: ToolCall,
    index: number,
    signal: AbortSignal,
    fresh = false,
  ): Promise<StepOutcome> {
    const id = stepJobId(taskId, index);
    if (fresh) {
      const waiting = this.wait(id, taskId, index, signal);
      try {
        await this.add(taskJob, taskId, call, index);
      } catch (err) {
        this.settle(id, (w) => w.reject(err as Error));
      }
      return waiting;
    }
    const previous = await this.store.steps.get(taskId, index);
    if (previous?.queue && previous.queue !== this.stepQueue.name) {
      const done = await this.takeOver(previous.queue, id, taskId, index, signal);
      if (done) return done;
    }

    const waiting = this.wait(id, taskId, index, signal);
    try {
      const found = await this.findOrAdd(taskJob, taskId, call, index);
      if (found) this.settle(id, (w) => w.resolve(found));
    } catch (err) {
      this.settle(id, (w) => w.reject(err as Error));
    }
    return waiting;
  }

  /** The step's outcome when it already finished; otherwise makes sure its job is queued (and returns nothing). */
  private async findOrAdd(
    taskJob: Job,
    taskId: string,
    call: ToolCall,
    index: number,
  ): Promise<StepOutcome | undefined> {
    const id = stepJobId(taskId, index);
    let job = await Job.fromId<StepJobData>(this.stepQueue, id);
    if (job) {
      const state = await job.getState();
      if (state === 'completed') return this.recorded(id, taskId, index);
      if (state === 'failed' || state === 'unknown') {
        await job.remove();
        job = undefined;
      }
    }
    if (job) return undefined;
    // Finished before, its job since gone (taken over from a dead worker, or failed after the
    // run when it could not be completed): the recorded outcome stands; nothing runs again.
    const recorded = await this.store.steps.outcome(taskId, index);
    if (recorded) return recorded;
    await this.add(taskJob, taskId, call, index);
    return undefined;
  }

  /**
   * Records the step (with the queue it goes to, for a worker that may have to take it over),
   * then adds its job. The record is fenced by the task's lock: a run that lost the lock without
   * noticing yet dispatches nothing, so a step never goes out from two runs of one task.
   */
  private async add(taskJob: Job, taskId: string, call: ToolCall, index: number): Promise<void> {
    const id = stepJobId(taskId, index);
    const data: StepJobData = { taskId, stepIndex: index, callId: call.id, action: call.args };
    const record = {
      index,
      action: call.args.action,
      status: 'waiting' as const,
      attempts: 0,
      queue: this.stepQueue.name,
    };
    if (!(await this.store.steps.setFenced(taskId, record, taskFence(taskJob)))) {
      throw new LeaseLostError(
        `task ${taskId}: the lock is no longer this run's; step ${index + 1} was not dispatched`,
      );
    }
    await this.stepQueue.add(
      JOBS.step.name(data),
      data,
      jobOptions('step', { jobId: id, parent: { id: taskJob.id!, queue: taskJob.queueQualifiedName } }),
    );
  }

  private wait(id: string, taskId: string, index: number, signal: AbortSignal): Promise<StepOutcome> {
    // A wait left behind by a run that stopped waiting (it lost its task's lock) gives way to the
    // run that resumed the task here; tasks never run side by side in one process.
    this.settle(id, (w) => w.reject(new StepFailedError(index, `the wait for step ${id} was taken over`)));
    const waiting = new Promise<StepOutcome>((resolve, reject) => {
      // The `completed` event is the fast path; this check is for a job that leaves the queue
      // without one (removed by a worker that took the task over, or by the reaper).
      const check = setInterval(() => void this.checkGone(id, taskId, index).catch(() => undefined), WAIT_CHECK_MS);
      const onAbort = () => {
        // The running command is killed through the sandbox; the step then completes and resolves
        // this wait. If it never started, drop the job so the task has no pending child.
        void Job.fromId(this.stepQueue, id)
          .then(async (job) => {
            const state = await job?.getState();
            if (job && (state === 'waiting' || state === 'delayed' || state === 'prioritized')) {
              await job.remove();
              this.settle(id, (w) => w.reject(new Error('cancelled')));
            }
          })
          .catch(() => undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.set(id, {
        resolve: (o) => {
          clearInterval(check);
          signal.removeEventListener('abort', onAbort);
          resolve(o);
        },
        reject: (e) => {
          clearInterval(check);
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
    });
    // An abandoned wait (its run stopped waiting) may still be settled later; that is not an error.
    waiting.catch(() => undefined);
    return waiting;
  }

  /** Settles the wait for a step whose job vanished: from its record if it finished, else as failed. */
  private async checkGone(id: string, taskId: string, index: number): Promise<void> {
    if (!this.waiters.has(id)) return;
    const job = await Job.fromId(this.stepQueue, id);
    const state = job ? await job.getState() : 'unknown';
    if (state !== 'completed' && state !== 'unknown') return;
    const recorded = await this.store.steps.outcome(taskId, index);
    if (recorded) this.settle(id, (w) => w.resolve(recorded));
    else if (state === 'unknown')
      this.settle(id, (w) => w.reject(new StepFailedError(index, `step ${id} left the queue without finishing`)));
  }

  private settle(id: string, how: (waiter: Waiter) => void): void {
    const waiter = this.waiters.get(id);
    if (!waiter) return;
    this.waiters.delete(id);
    how(waiter);
  }

  /**
   * The step was added to another worker's queue (that worker died, or lost the task's lock while
   * Redis was away and the task moved here). A completed result is reused. A live worker keeps
   * its step: it may be running the command right now, or have run it and be about to record the
   * outcome, so this task waits for it rather than running the command a second time. A dead
   * worker's step is removed — which also drops it from the task's dependencies — once its lock
   * has expired, and runs here.
   */
  private async takeOver(
    queueName: string,
    id: string,
    taskId: string,
    index: number,
    signal: AbortSignal,
  ): Promise<StepOutcome | undefined> {
    const owner = stepQueueOwner(queueName);
    const other = new Queue(queueName, queueOptions(this.connection, this.prefix));
    try {
      let deadline: number | undefined;
      let waitingLogged = false;
      for (;;) {
        signal.throwIfAborted();
        const job = await Job.fromId(other, id);
        if (!job) return undefined;
        const state = await job.getState();
        if (state === 'completed') {
          const recorded = await this.store.steps.outcome(taskId, index);
          if (recorded) return recorded;
        }
        if (state === 'unknown') return undefined;
        if (state === 'completed' || state === 'failed' || (await this.deathWatch.isDead(owner))) {
          deadline ??= Date.now() + TAKEOVER_WAIT_MS;
          try {
            await job.remove();
            this.logger.info({ step: id, from: queueName, state }, 'took over a step from another worker');
            return undefined;
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await delay(1_000, undefined, { signal });
          }
          continue;
        }
        if (!waitingLogged) {
          this.logger.info({ step: id, owner, state }, 'the step is still with a live worker; waiting for its outcome');
          waitingLogged = true;
        }
        await delay(TAKEOVER_POLL_MS, undefined, { signal });
      }
    } finally {
      await other.close();
    }
  }
}
