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
export { TaskSandboxPool, LABEL_POOL_OWNER } from './task-pool.js';
export type { SlotAssignments, TaskSandboxPoolOptions } from './task-pool.js';
