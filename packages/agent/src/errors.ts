/** Base of every error the agent package throws on purpose. */
export class AgentError extends Error {
  override readonly name: string = 'AgentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The model endpoint failed for good (the SDK already spent its retries, or the failure is not
 * one that a retry fixes). The worker turns it into a failed task with `code: 'llm_error'`.
 */
export class LlmError extends AgentError {
  override readonly name = 'LlmError';
  /** HTTP status of the last attempt, when the endpoint answered at all. */
  readonly status: number | undefined;
  /** True when a later attempt (e.g. a re-queued task job) may succeed: 429, 5xx, timeouts, connection errors. */
  readonly retryable: boolean;
  /** Attempts made for this request, retries included. */
  readonly attempts: number;
  readonly code = 'llm_error';

  constructor(message: string, details: { status?: number; retryable: boolean; attempts: number; cause?: unknown }) {
    super(message, { cause: details.cause });
    this.status = details.status;
    this.retryable = details.retryable;
    this.attempts = details.attempts;
  }
}

/** The loop was stopped by its AbortSignal or its deadline; used internally to unwind a model request or a step. */
export class AgentAbortError extends AgentError {
  override readonly name = 'AgentAbortError';
  constructor(readonly reason: 'cancelled' | 'timeout') {
    super(reason === 'cancelled' ? 'the task was cancelled' : 'the task ran out of time');
  }
}
