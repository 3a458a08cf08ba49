import type { ActionResult, SandboxAction } from '@research/contracts';

/**
 * Version of the runner's line protocol (runner/sandbox_runner/proto.py has the same number).
 * The runner says its version in its ready line; the host refuses any other.
 */
export const RUNNER_PROTOCOL = 5;

// Every field is set: path parameters are resolved (an absent one is the task directory), and the
// host bounds a command's time itself.
type Call<A> = A extends { action: infer N } ? Required<Omit<A, 'action'>> & { op: N; task: string } : never;

/**
 * An action of the catalog that runs in the sandbox, as the runner takes it (see requests.ts): `op` is the action's name,
 * its parameters follow, and its path parameters are absolute container paths already checked
 * lexically by resolveTaskPath.
 */
export type ActionRequest = Call<SandboxAction>;

/** execute-command, with the bounds the host sets on every command. */
export type ExecuteRequest = Extract<ActionRequest, { op: 'execute-command' }> & {
  maxOutputBytes: number;
  /** Asks for the command's output while it runs (`LiveOutput` lines before the reply). */
  live?: LiveOutputRequest;
};

/** How a command's live output is bounded; the runner coalesces what comes between lines. */
export interface LiveOutputRequest {
  /** At most one line per stream this often. */
  intervalMs: number;
  /** Bytes of live output per command; past it one last line with `truncated`. */
  maxBytes: number;
}

/** Output of a running command, as the runner sends it before the command's reply. */
export interface LiveOutput {
  stream: 'stdout' | 'stderr';
  chunk: string;
  /** The command's live output stops here (its cap was reached); its reply still has all of it. */
  truncated?: true;
}

/**
 * The runner's line protocol (see runner/sandbox_runner/proto.py): the actions, and the ops
 * the host needs around them. Both transports — the long-lived runner and the per-call exec
 * fallback — take these requests, so DockerSandbox has one code path.
 */
export type RunnerRequest =
  | Exclude<ActionRequest, { op: 'execute-command' }>
  | ExecuteRequest
  | { op: 'cancel-task'; task: string }
  | {
      op: 'export';
      task: string;
      maxBytes: number;
      maxFiles: number;
      maxNameBytes: number;
      /** Kill every process of the task first (as `cancel-task`), in the same request. */
      stop?: boolean;
    }
  | { op: 'cleanup'; maxAgeMs: number }
  | { op: 'remove-task'; task: string }
  | { op: 'ping' };

export type RunnerOp = RunnerRequest['op'];

export interface RefusedReply {
  ok: false;
  error: { code: string; message: string };
}

export type RunnerReply<T = unknown> = { ok: true; result: T } | RefusedReply;

export interface ExportReply {
  files: { path: string; size: number; content?: string }[];
  truncated: boolean;
  /** Regular files left out of the list (past its count or name-bytes cap). */
  omitted: number;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Host-side bound on the reply; past it the call fails with SandboxTimeoutError. */
  replyTimeoutMs: number;
  /** Live output of the call (an execute-command with `live`); transports without it never call it. */
  onOutput?: ((output: LiveOutput) => void) | undefined;
}

/** A way to get requests answered inside the container. */
export interface Transport {
  readonly kind: 'runner' | 'exec';
  /** False once the transport is known to be broken (the runner's stream ended). */
  readonly alive: boolean;
  call<T = ActionResult>(req: RunnerRequest, options: CallOptions): Promise<RunnerReply<T>>;
  close(): Promise<void>;
}
