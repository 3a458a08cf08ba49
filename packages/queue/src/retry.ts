import { type BackoffOptions, type Job, UnrecoverableError } from 'bullmq';

/**
 * How BullMQ retries one kind of job: plain data in the job catalog, compiled into the job's
 * options (`jobOptions`) and its Worker's (`workerOptions`) in one place.
 *
 * Retries below the job level are not in it, on purpose: the sandbox re-sends an idempotent
 * call (a file action, or one that never reached the container) once after the container or its
 * runner died, and the model provider retries a request `LLM_MAX_RETRIES` times. Each is
 * invisible to the job; a failure that outlives them is what this policy retries.
 */
export interface RetryPolicy {
  /** Runs of a job, the first included (BullMQ's `attempts`). */
  attempts: number;
  /** The wait before each further run (BullMQ's `backoff`). */
  backoff: BackoffOptions;
  /**
   * How often a job may be found stalled — its lock expired because its worker died, froze, or
   * lost Redis for longer than the lock — and be put back to run again; one more stall fails it
   * (BullMQ's Worker `maxStalledCount`).
   */
  maxStalledCount: number;
}

/**
 * Whether another attempt of the job that threw `err` may succeed, decided by the error's type
 * only: BullMQ's `UnrecoverableError` may not; an error that says so in a boolean `retryable`
 * (the sandbox's errors, the model provider's) is taken at its word; anything else may.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof UnrecoverableError) return false;
  if (err instanceof Error && 'retryable' in err && typeof err.retryable === 'boolean') return err.retryable;
  return true;
}

/**
 * `err` as a job processor should throw it: as BullMQ's `UnrecoverableError` (so no attempt is
 * spent on it) when it is not retryable, with the original as its cause.
 */
export function asJobError(err: unknown): Error {
  if (err instanceof UnrecoverableError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  if (isRetryable(e)) return e;
  const final = new UnrecoverableError(e.message);
  final.cause = e;
  return final;
}

/**
 * Whether a job that just failed has failed for good — BullMQ will not run it again — read from
 * the job's state, not from the error: BullMQ sets `finishedOn` only when it moves a job to
 * `failed` (its attempts used up, an unrecoverable error, or stalled more than `maxStalledCount`
 * times), never when it schedules a retry. For a Worker's `failed` event.
 */
export function isFinalFailure(job: Pick<Job, 'finishedOn'>): boolean {
  return typeof job.finishedOn === 'number';
}
