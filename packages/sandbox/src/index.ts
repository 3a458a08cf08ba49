export { DockerSandbox } from './docker-sandbox.js';
export { sandboxOptionsFromEnv } from './options.js';
export type { DockerSandboxOptions } from './options.js';
export { resolveTaskPath, WORKSPACE_ROOT } from './paths.js';
export {
  SandboxError,
  SandboxTimeoutError,
  SandboxNotFoundError,
  SandboxStoppedDuringCommandError,
  SandboxUnavailableError,
  SandboxRunnerError,
  SandboxImageMissingError,
  SandboxProtocolError,
  SandboxAbortedError,
  InvalidTaskIdError,
  PathOutsideWorkspaceError,
} from './errors.js';
export type { Sandbox, SandboxInfo, RunOptions, ExportedFile, ExportOptions, ExportResult } from './types.js';
export { TaskSandboxPool } from './task-pool.js';
export {
  LABEL_SANDBOX,
  LABEL_WORKER,
  LABEL_POOL_OWNER,
  LABEL_SLOT,
  LABEL_PREFIX,
  LABEL_VOLUME,
  LABEL_SPEC,
} from './labels.js';
export { collectGarbage, GC_MIN_AGE_MS } from './gc.js';
export type { GcOptions, GcItem, GcResult } from './gc.js';
export type { SlotAssignments, TaskSandboxPoolOptions } from './task-pool.js';
