import { TASK_ID_PATTERN } from '@research/contracts';

/**
 * The sandbox's error hierarchy. `retryable` says whether the same call may succeed later
 * (the worker maps `retryable: false` to BullMQ's UnrecoverableError). A refused action (a path
 * outside the workspace, bad parameters) is not an error: `run()` resolves it as
 * `{ ok: false, error }` for the model to see. These classes are for infrastructure failures and
 * for programming mistakes of the caller.
 */
export class SandboxError extends Error {
  override readonly name: string = 'SandboxError';
  /** Stable machine-readable code. */
  readonly code: string = 'sandbox_error';
  /** Whether retrying the same call later may succeed. */
  readonly retryable: boolean = true;
}

/** A Docker API call or the in-container runner did not answer in time. */
export class SandboxTimeoutError extends SandboxError {
  override readonly name = 'SandboxTimeoutError' as const;
  override readonly code = 'sandbox_timeout';
  override readonly retryable = true;
}

/** The container vanished (removed, killed, stopped) — the next call re-ensures it. */
export class SandboxNotFoundError extends SandboxError {
  override readonly name = 'SandboxNotFoundError' as const;
  override readonly code = 'sandbox_not_found';
  override readonly retryable = true;
}

/**
 * The container stopped while a command ran in it (found by the exec transport's check after the
 * command): the command may have had effects, so the sandbox never re-sends it on its own.
 */
export class SandboxStoppedDuringCommandError extends SandboxNotFoundError {
  constructor() {
    super('the sandbox container stopped during the command');
  }
}

/** The Docker engine is unreachable or failed a request. */
export class SandboxUnavailableError extends SandboxError {
  override readonly name = 'SandboxUnavailableError' as const;
  override readonly code = 'sandbox_unavailable';
  override readonly retryable = true;
}

/** The in-container runner died or broke the protocol; it is restarted on the next call. */
export class SandboxRunnerError extends SandboxError {
  override readonly name = 'SandboxRunnerError' as const;
  override readonly code = 'sandbox_runner_failed';
  override readonly retryable = true;
}

/**
 * The runner in the container speaks another protocol version than this host: the runner files
 * shipped with this build do not match its code. Retrying does not help.
 */
export class SandboxProtocolError extends SandboxError {
  override readonly name = 'SandboxProtocolError' as const;
  override readonly code = 'sandbox_protocol_mismatch';
  override readonly retryable = false;
  constructor(
    readonly runnerProtocol: unknown,
    readonly hostProtocol: number,
  ) {
    super(
      `the sandbox runner speaks protocol ${JSON.stringify(runnerProtocol ?? null)} but this host speaks protocol ${hostProtocol}: ` +
        'the runner files shipped with this build (packages/sandbox/runner) do not match its code; rebuild and redeploy both together',
    );
  }
}

/** The sandbox image is not present and cannot be pulled. Retrying does not help. */
export class SandboxImageMissingError extends SandboxError {
  override readonly name = 'SandboxImageMissingError' as const;
  override readonly code = 'sandbox_image_missing';
  override readonly retryable = false;
}

/** The caller aborted the call (its AbortSignal fired); the command's process group was killed. */
export class SandboxAbortedError extends SandboxError {
  override readonly name = 'SandboxAbortedError' as const;
  override readonly code = 'sandbox_aborted';
  override readonly retryable = false;
}

/** A task id that does not match TASK_ID_PATTERN (a bug in the caller). */
export class InvalidTaskIdError extends SandboxError {
  override readonly name = 'InvalidTaskIdError' as const;
  override readonly code = 'invalid_task_id';
  override readonly retryable = false;
  constructor(readonly taskId: string) {
    super(`invalid task id ${JSON.stringify(taskId.slice(0, 200))}: expected ${TASK_ID_PATTERN}`);
  }
}

/** A path that leaves `/workspace/<taskId>`. `run()` reports it as code `path_outside_workspace`. */
export class PathOutsideWorkspaceError extends SandboxError {
  override readonly name = 'PathOutsideWorkspaceError' as const;
  override readonly code = 'path_outside_workspace';
  override readonly retryable = false;
  constructor(
    readonly path: string,
    readonly taskId: string,
  ) {
    super(`${path} is outside the task directory /workspace/${taskId}`);
  }
}
