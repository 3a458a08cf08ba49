import type { ToolArgsResult } from './types.js';
import { catalogTool, toToolAction } from './catalog-tool.js';

export const DAYTONA_EXECUTE = 'daytona-execute';

/** Validates raw parameters into a daytona-execute action, with messages meant for the model. */
export function toDaytonaAction(params: Record<string, unknown>): ToolArgsResult {
  return toToolAction(DAYTONA_EXECUTE, params);
}

export const daytonaExecuteTool = catalogTool(
  DAYTONA_EXECUTE,
  (actions) =>
    "Runs one operation in the secure sandbox container, inside this task's directory under /workspace: " +
    `${actions}. Every file and every command goes through this tool.`,
);
