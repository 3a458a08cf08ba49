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

/** The task keeps more in Redis than `TASK_MAX_REDIS_BYTES`: it fails before its next step. */
export class StorageQuotaError extends Error {
  override readonly name = 'StorageQuotaError';
}
