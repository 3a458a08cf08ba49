import type { LiveOutput } from './protocol.js';
import type { DaytonaAction, StepOutcome } from '@research/contracts';

/** What ensure() found or did. */
export interface SandboxInfo {
  containerId: string;
  name: string;
  image: string;
  /** The container did not exist and was created. */
  created: boolean;
  /** The container was stopped (or just created) and was started. */
  started: boolean;
  /**
   * The container found was removed and made again, because these fields differed from the
   * configuration (`image`, or a field of the hardening spec); absent when nothing was replaced.
   */
  replaced?: string[];
}

export interface RunOptions {
  /** Aborting kills the command's whole process group; run() then rejects with SandboxAbortedError. */
  signal?: AbortSignal;
  /** Bound for execute-command, capped by the sandbox's commandTimeoutMs. */
  timeoutMs?: number;
  /**
   * Called with an execute-command's output while it runs (coalesced: at most one call per
   * stream every `liveOutputIntervalMs`, `liveOutputMaxBytes` per command). The outcome still
   * has the whole output. The exec fallback transport never calls it. Default: none.
   */
  onOutput?: (output: LiveOutput) => void;
}

export interface ExportedFile {
  /** Relative to the task directory, `/`-separated. */
  path: string;
  size: number;
  /** Absent when it did not fit in `maxBytes`. */
  content?: Buffer;
}

export interface ExportOptions {
  /** Total bytes of file contents included; files past it are listed with their size only. */
  maxBytes: number;
  /** Files listed at most (sorted by path; the rest is counted in `omitted`). Default: the sandbox's `exportMaxFiles`. */
  maxFiles?: number;
  /** Bytes of file names listed at most. Default: the sandbox's `exportMaxNameBytes`. */
  maxNameBytes?: number;
  /**
   * First kill every process of the task, as `cancelTask` does, in the same request: the copy is
   * then the task's final state, and a task that is over needs no separate cancel.
   */
  stopProcesses?: boolean;
}

export interface ExportResult {
  files: ExportedFile[];
  /** True when a file is listed without its content, or files are left out of the list. */
  truncated: boolean;
  /** Regular files left out of the list (past its count or name-bytes cap); absent: none. */
  omitted?: number;
}

/** A worker's sandbox: one container, many tasks, each in /workspace/<taskId>. */
export interface Sandbox {
  /**
   * Finds this worker's container by labels research.sandbox=true + research.worker=<workerId>;
   * running → reuse, stopped → start, missing → create. Idempotent, safe to call concurrently.
   */
  ensure(): Promise<SandboxInfo>;
  /**
   * Runs one action in /workspace/<taskId> (created on demand). Refused inputs (path escape, bad
   * parameters) resolve to `{ ok: false, error: { code, message } }`; a non-zero exit is
   * `{ ok: true }` with its exitCode. Infrastructure failures throw a retryable SandboxError; a
   * vanished container is re-ensured by the next call.
   */
  run(taskId: string, action: DaytonaAction, options?: RunOptions): Promise<StepOutcome>;
  /** Kills every running command of the task (and background jobs its commands left). */
  cancelTask(taskId: string): Promise<void>;
  /**
   * Regular files of the task directory (recursive, symlinks skipped), with contents up to
   * `maxBytes` in total; files that do not fit are listed with their size only. The list is
   * capped in count and in bytes of names (`omitted` counts what was left out).
   */
  exportFiles(taskId: string, options: ExportOptions): Promise<ExportResult>;
  /** Deletes task workspaces whose last activity (directory mtime) is older than maxAgeMs; returns how many. */
  cleanupExpired(maxAgeMs: number): Promise<number>;
  /**
   * Deletes one task's workspace whatever its age, killing what still runs as the task first (the
   * task was deleted). Resolves false when there was none.
   */
  removeWorkspace(taskId: string): Promise<boolean>;
  /** Times ensure() had to start or re-create the container after the first time. */
  readonly restarts: number;
  /** Closes the runner; then keeps, stops (default) or removes the container. */
  dispose(mode?: 'keep' | 'stop' | 'remove'): Promise<void>;
  /** The task has finished and its files are kept elsewhere; per-task sandboxes free its container. */
  releaseTask?(taskId: string): Promise<void>;
}
