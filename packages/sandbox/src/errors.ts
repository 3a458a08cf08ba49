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

/**
 * The base class of one kind of sandbox error: its literal `name`, its stable `code`, and
 * whether the same call may succeed later (`'retryable'`) or never will (`'final'`), stated
 * once where the kind is declared.
 */
function errorKind<const Name extends string, const Code extends string>(
  name: Name,
  code: Code,
  retry: 'retryable' | 'final',
) {
  return class extends SandboxError {
    override readonly name: Name = name;
    override readonly code: Code = code;
    override readonly retryable: boolean = retry === 'retryable';
  };
}

/** A Docker API call or the in-container runner did not answer in time. */
export class SandboxTimeoutError extends errorKind('SandboxTimeoutError', 'sandbox_timeout', 'retryable') {}

/** The container vanished (removed, killed, stopped) — the next call re-ensures it. */
export class SandboxNotFoundError extends errorKind('SandboxNotFoundError', 'sandbox_not_found', 'retryable') {}

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
export class SandboxUnavailableError extends errorKind('SandboxUnavailableError', 'sandbox_unavailable', 'retryable') {}

/** The in-container runner died or broke the protocol; it is restarted on the next call. */
export class SandboxRunnerError extends errorKind('SandboxRunnerError', 'sandbox_runner_failed', 'retryable') {}

/**
 * The runner in the container speaks another protocol version than this host: the runner files
 * shipped with this build do not match its code. Retrying does not help.
 */
export class SandboxProtocolError extends errorKind('SandboxProtocolError', 'sandbox_protocol_mismatch', 'final') {
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
export class SandboxImageMissingError extends errorKind('SandboxImageMissingError', 'sandbox_image_missing', 'final') {}

/** The caller aborted the call (its AbortSignal fired); the command's process group was killed. */
export class SandboxAbortedError extends errorKind('SandboxAbortedError', 'sandbox_aborted', 'final') {}

/** A task id that does not match TASK_ID_PATTERN (a bug in the caller). */
export class InvalidTaskIdError extends errorKind('InvalidTaskIdError', 'invalid_task_id', 'final') {
  constructor(readonly taskId: string) {
    super(`invalid task id ${JSON.stringify(taskId.slice(0, 200))}: expected ${TASK_ID_PATTERN}`);
  }
}

/** A path that leaves `/workspace/<taskId>`. `run()` reports it as code `path_outside_workspace`. */
export class PathOutsideWorkspaceError extends errorKind(
  'PathOutsideWorkspaceError',
  'path_outside_workspace',
  'final',
) {
  constructor(
    readonly path: string,
    readonly taskId: string,
  ) {
    super(`${path} is outside the task directory /workspace/${taskId}`);
  }
}
