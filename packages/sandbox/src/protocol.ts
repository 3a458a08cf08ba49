import type { ActionResult } from '@research/contracts';

/**
 * Version of the runner's line protocol (runner/sandbox_runner/proto.py has the same number).
 * The runner says its version in its ready line; the host refuses any other.
 */
export const RUNNER_PROTOCOL = 2;

/**
 * The runner's line protocol (see runner/sandbox_runner/proto.py). Both transports — the
 * long-lived runner and the per-call exec fallback — take these requests, so DockerSandbox has
 * one code path. Paths in requests are absolute container paths already checked lexically by
 * resolveTaskPath.
 */
export type RunnerRequest =
  | { op: 'create-file'; task: string; filePath: string; content: string }
  | { op: 'read-file'; task: string; filePath: string }
  | { op: 'list-files'; task: string; path: string }
  | { op: 'execute-command'; task: string; command: string; cwd: string; timeoutMs: number; maxOutputBytes: number }
  | { op: 'cancel-task'; task: string }
  | { op: 'export'; task: string; maxBytes: number; maxFiles: number; maxNameBytes: number }
  | { op: 'cleanup'; maxAgeMs: number }
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
}

/** A way to get requests answered inside the container. */
export interface Transport {
  readonly kind: 'runner' | 'exec';
  /** False once the transport is known to be broken (the runner's stream ended). */
  readonly alive: boolean;
  call<T = ActionResult>(req: RunnerRequest, options: CallOptions): Promise<RunnerReply<T>>;
  close(): Promise<void>;
}
