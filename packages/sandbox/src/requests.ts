import { actionOf, type SandboxAction } from '@research/contracts';
import { resolveTaskPath } from './paths.js';
import type { ActionRequest } from './protocol.js';

/**
 * A validated action call as the runner takes it, derived from the action catalog: `op` is the
 * action's name, its parameters follow as they are, and every parameter the catalog marks as a
 * workspace path is resolved by resolveTaskPath (an absent optional one is the task directory),
 * so a path outside the task directory is refused before anything reaches the container. A new
 * sandbox action needs nothing here, only its executor in the runner and the exec fallback.
 * Throws PathOutsideWorkspaceError.
 */
export function actionRequest(taskId: string, call: SandboxAction): ActionRequest {
  const { action, ...params } = call;
  const entry = actionOf(action);
  if (entry.runsIn !== 'sandbox') throw new TypeError(`${action} runs in the worker, not in the sandbox`);
  const fields: Record<string, unknown> = { ...params };
  for (const name of entry.pathParams) {
    const given = fields[name];
    fields[name] = resolveTaskPath(taskId, typeof given === 'string' ? given : '.');
  }
  return { ...fields, op: action, task: taskId } as ActionRequest;
}
