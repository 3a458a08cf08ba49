import type { Job } from 'bullmq';

/** This run no longer holds the task's lock; the task resumes from its checkpoint, here or elsewhere. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/** A step job failed for good (every attempt): the task retries from its checkpoint. */
export class StepFailedError extends Error {
  override readonly name = 'StepFailedError';
  constructor(
    readonly stepIndex: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Whether BullMQ will not run the job again: its attempts are used up, it threw
 * UnrecoverableError, or the stalled checker failed it ("stalled more than allowable limit").
 */
export function isFinalFailure(job: Job, err: Error): boolean {
  return (
    job.attemptsMade >= (job.opts.attempts ?? 1) ||
    err.name === 'UnrecoverableError' ||
    /stalled more than/.test(err.message)
  );
}
