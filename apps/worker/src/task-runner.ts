import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import type { ModelProvider } from '@research/agent';
import type { Env, Logger } from '@research/config';
import type { TaskStatus } from '@research/contracts';
import {
  type Entry,
  type FairShare,
  isFinalFailure,
  type StatusDetails,
  TaskJobData,
  type TaskStore,
  type Transition,
} from '@research/queue';
import type { Sandbox } from '@research/sandbox';
import type { StepDispatcher } from './step-dispatcher.js';
import { type RunControl, type StartReads, type TaskRunResult, readStart, runTask } from './task-run.js';

export interface TaskRunnerOptions {
  env: Env;
  workerId: string;
  store: TaskStore;
  sandbox: Sandbox;
  dispatcher: StepDispatcher;
  /** The tenants' fair share and running limit: a task runs only once it has a slot. */
  fair: FairShare;
  logger: Logger;
  /** Defaults to the provider the environment selects. */
  provider?: ModelProvider;
  /** The web tools are offered to the model (a search provider is configured). Default: false. */
  web?: boolean;
}

/** How a task that ends here leaves its sandbox. */
export interface Ending {
  /**
   * The run ending it ran here: its leftovers are this worker's to clear even when another
   * writer gave the task its final status first. False for a job that failed for good, which
   * the run that set the status (if any) has cleared after.
   */
  ranHere: boolean;
  /** Its commands may have left processes running (a server for a later step, a fork bomb): kill them. */
  ranCommand: boolean;
  /** Its files may not be kept in Redis yet: copy them before a per-task sandbox goes. */
  keepFiles: boolean;
}

/**
 * The research tasks running on this worker: runs the task jobs, and owns what concerns a
 * running task — its cancellation, the loss of its lock, and how it ends (the final status and
 * the sandbox it leaves behind), whether its run finished or its job failed for good.
 */
export class TaskRunner {
  /** Runs in progress here, by task id. */
  private readonly runs = new Map<string, RunControl>();
  /** Task job runs in progress here, by job id (see `process`). */
  private readonly jobRuns = new Map<string, Promise<unknown>>();
  private readonly log: Logger;

  constructor(private readonly options: TaskRunnerOptions) {
    this.log = options.logger;
  }

  /**
   * The task Worker's processor. A task job delivered again while its first run is still going
   * here (its lock expired while Redis was away) waits for that run to wind down, then resumes
   * from the checkpoint like any retry: two loops of one task must never dispatch steps side by side.
   */
  async process(job: Job): Promise<TaskRunResult> {
    const parsed = TaskJobData.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid task payload: ${parsed.error.message}`);
    const key = job.id ?? parsed.data.taskId;
    const previous = this.jobRuns.get(key);
    if (previous) {
      this.log.warn({ taskId: key }, 'task delivered again while it still runs here; waiting for the first run');
      await previous.catch(() => undefined);
    }
    const { fair, store } = this.options;
    const { taskId } = parsed.data;
    // Registered before the run reads the cancel flag: a cancel published from then on reaches it.
    const control: RunControl = { cancel: new AbortController(), lease: new AbortController() };
    this.runs.set(taskId, control);
    // What the run reads first goes out beside the slot request: one round trip less per task.
    const reads = readStart(store, taskId);
    // Awaited by the run; meanwhile a failure must not count as unhandled (nor, parked, ever).
    reads.catch(() => undefined);
    const entering = fair.enter(job);
    // With no running limit every task is admitted, so its start goes out with its reads and its
    // slot, in the same round trip. The start is refused if the task ended meanwhile, like the
    // run's own; a cancel requested before it is read with the reads and ends the task at once.
    // A task with a TTL is started by the run, after its deadline was checked.
    const started =
      fair.maxRunning === 0 && parsed.data.request.ttlSeconds === undefined
        ? store.lifecycle.start(taskId, { workerId: this.options.workerId })
        : undefined;
    started?.catch(() => undefined);
    let entry: Entry | undefined;
    try {
      entry = await entering;
    } finally {
      // No slot (or no answer): nothing runs here, and no cancel is this worker's to route.
      if (!entry?.admitted) this.unregister(taskId, control);
    }
    if (!entry.admitted) {
      // Its tenant is at TENANT_MAX_RUNNING: back to the queue, keeping its place, until a slot frees.
      this.log.debug(
        { taskId: key, tenant: entry.tenant, running: entry.running },
        'tenant at its running limit; task parked',
      );
      await fair.park(job, entry.tenant);
      throw new DelayedError();
    }
    const run = this.run(job, parsed.data, control, reads, started);
    this.jobRuns.set(key, run);
    try {
      return await run;
    } finally {
      if (this.jobRuns.get(key) === run) this.jobRuns.delete(key);
      // Whatever ended the run (an end, a retry, a lost lock), its slot goes to the tenant's next task.
      await fair
        .leave(job, entry.tenant)
        .catch((err: unknown) => log(this.log, key).warn({ err }, 'could not give back the running slot'));
    }
  }

  private unregister(taskId: string, control: RunControl): void {
    if (this.runs.get(taskId) === control) this.runs.delete(taskId);
  }

  private async run(
    job: Job,
    data: TaskJobData,
    control: RunControl,
    reads: Promise<StartReads>,
    started: Promise<Transition> | undefined,
  ): Promise<TaskRunResult> {
    const { taskId } = data;
    try {
      const { env, workerId, store, sandbox, dispatcher, logger, provider, web = false } = this.options;
      return await runTask(
        {
          env,
          workerId,
          store,
          sandbox,
          dispatcher,
          logger,
          ...(provider ? { provider } : {}),
          web,
          control,
          startReads: reads,
          ...(started ? { started } : {}),
          end: (to, details, ending) => this.end(taskId, to, details, ending),
        },
        job,
        data,
      );
    } finally {
      this.unregister(taskId, control);
    }
  }

  /** A cancel was requested (the API published it): the run here, if any, stops and its command is killed. */
  cancel(taskId: string): void {
    const control = this.runs.get(taskId);
    if (!control) return;
    this.log.info({ taskId }, 'cancel requested');
    control.cancel.abort();
    void this.options.sandbox
      .cancelTask(taskId)
      .catch((err: unknown) => log(this.log, taskId).warn({ err }, 'cancel: could not kill commands'));
  }

  /**
   * The locks of these task jobs are gone (Redis was away for longer than they last): another
   * worker may already be resuming the tasks, so the runs here stop working on them.
   */
  loseLocks(jobIds: string[]): void {
    for (const id of jobIds) {
      const control = this.runs.get(id);
      if (!control || control.lease.signal.aborted) continue;
      this.log.warn(
        { taskId: id },
        'lost the lock of a running task; stopping it here so it resumes from its checkpoint',
      );
      control.lease.abort(new Error('the task lock was lost'));
    }
  }

  /** The signal of task `taskId`'s run here (aborted on cancel), for the commands of its steps. */
  signalOf(taskId: string): AbortSignal | undefined {
    return this.runs.get(taskId)?.cancel.signal;
  }

  /** Ids of the tasks running here now. */
  running(): string[] {
    return [...this.runs.keys()];
  }

  /**
   * Wired to the task Worker's `failed` event. A job that BullMQ will not run again (attempts
   * used up, stalled too often, or unrecoverable) fails its task, unless its run already gave the
   * task a final status (it threw after ending it).
   */
  onFailed(job: Job | undefined, err: Error): void {
    if (!job || !isFinalFailure(job)) return;
    const taskId = (job.data as { taskId?: unknown }).taskId;
    if (typeof taskId !== 'string') return;
    void this.end(
      taskId,
      'failed',
      { error: { code: 'internal', message: err.message } },
      { ranHere: false, ranCommand: false, keepFiles: true },
    ).catch((e: unknown) => log(this.log, taskId).error({ err: e }, 'could not record a failed task'));
  }

  /**
   * The one way a task ends on this worker: processes its commands left running are stopped (once
   * the task is over they may neither starve the other tasks sharing the container nor pile up),
   * then the guarded transition to its final status, then a per-task sandbox is released (its
   * files kept in Redis first). The processes go first so that a client that sees the final status
   * never sees them still running (a fork bomb's children, say, still holding the pids limit).
   * Returns the status the task has: `to`, or the one another writer gave it first.
   */
  async end(taskId: string, to: TaskStatus, details: StatusDetails, ending: Ending): Promise<TaskStatus> {
    const { store, sandbox, env } = this.options;
    const l = log(this.log, taskId);
    if (ending.ranCommand)
      await sandbox
        .cancelTask(taskId)
        .catch((err: unknown) => l.warn({ err }, "could not stop the finished task's leftover processes"));
    const ended = await store.lifecycle.transition(taskId, to, details);
    // Refused: someone ended the task first (a cancel of its re-queued job, say); that status stands.
    if (!ended.ok) {
      l.info({ status: ended.status, wanted: to }, 'the task had ended meanwhile; its status stands');
      if (!ending.ranHere) return ended.status ?? to;
    }
    if (sandbox.releaseTask) {
      if (ending.keepFiles) {
        const { files } = await sandbox
          .exportFiles(taskId, { maxBytes: env.RESULT_MAX_BYTES })
          .catch((err: unknown) => {
            l.warn({ err }, "could not keep the failed task's files");
            return { files: [] };
          });
        if (files.length > 0) await store.files.save(taskId, files);
      }
      await sandbox
        .releaseTask(taskId)
        .catch((err: unknown) => l.warn({ err }, "could not release the task's sandbox"));
    }
    return ended.status ?? to;
  }
}

function log(logger: Logger, taskId: string): Logger {
  return logger.child({ taskId });
}
