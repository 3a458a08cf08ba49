import path from 'node:path';
import { TASK_ID_PATTERN } from '@research/contracts';
import { InvalidTaskIdError, PathOutsideWorkspaceError } from './errors.js';

/** Where the volume is mounted in every sandbox container (a contract). */
export const WORKSPACE_ROOT = '/workspace';

/** Throws InvalidTaskIdError unless `taskId` can name a directory safely. */
export function assertTaskId(taskId: string): void {
  if (typeof taskId !== 'string' || !TASK_ID_PATTERN.test(taskId)) throw new InvalidTaskIdError(String(taskId));
}

/** `/workspace/<taskId>`. */
export function taskDir(taskId: string): string {
  assertTaskId(taskId);
  return `${WORKSPACE_ROOT}/${taskId}`;
}

/**
 * Resolves a path the model gave into an absolute container path inside `/workspace/<taskId>`,
 * lexically: `x`, `./x`, `a/../x` and `/workspace/<taskId>/x` all land in the task directory;
 * anything that leaves it (`..`, another absolute path, a NUL byte) throws
 * PathOutsideWorkspaceError. Symlinks cannot be judged here — the runner checks the resolved
 * path again inside the container.
 */
export function resolveTaskPath(taskId: string, p: string): string {
  const base = taskDir(taskId);
  if (typeof p !== 'string' || p.includes('\0')) throw new PathOutsideWorkspaceError(String(p), taskId);
  const joined = p.startsWith('/') ? path.posix.normalize(p) : path.posix.join(base, p === '' ? '.' : p);
  const resolved = joined.length > 1 && joined.endsWith('/') ? joined.slice(0, -1) : joined;
  if (resolved !== base && !resolved.startsWith(`${base}/`)) throw new PathOutsideWorkspaceError(p, taskId);
  return resolved;
}
