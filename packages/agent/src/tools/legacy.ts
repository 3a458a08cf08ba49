import type { ToolDefinition } from './types.js';
import { DAYTONA_EXECUTE, toDaytonaAction } from './daytona-execute.js';

/** First defined value among a few spellings older prompts used. */
function pick(params: Record<string, unknown>, ...keys: string[]): unknown {
  for (const key of keys) if (params[key] !== undefined) return params[key];
  return undefined;
}

function defined(entries: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).filter(([, v]) => v !== undefined));
}

/**
 * The seed's local FileCreationTool. It wrote to the host's /tmp; it now only survives as an
 * alias so old prompts keep working, and its calls become sandboxed create-file actions.
 */
export const fileCreationTool: ToolDefinition = {
  name: 'file-creation',
  description: 'Deprecated: use daytona-execute with action="create-file".',
  deprecated: { replacement: DAYTONA_EXECUTE },
  parameters: {
    type: 'object',
    properties: { filePath: { type: 'string' }, content: { type: 'string' } },
    required: ['filePath', 'content'],
  },
  toAction: (params) =>
    toDaytonaAction({
      action: 'create-file',
      filePath: pick(params, 'filePath', 'path', 'file_path', 'filename'),
      content: pick(params, 'content'),
    }),
};

/** The seed's host-side CommandExecutionTool, now an alias of a sandboxed execute-command. */
export const executeCommandTool: ToolDefinition = {
  name: 'execute-command',
  description: 'Deprecated: use daytona-execute with action="execute-command".',
  deprecated: { replacement: DAYTONA_EXECUTE },
  parameters: {
    type: 'object',
    properties: { command: { type: 'string' }, timeoutMs: { type: 'integer' }, cwd: { type: 'string' } },
    required: ['command'],
  },
  toAction: (params) =>
    toDaytonaAction(
      defined({
        action: 'execute-command',
        command: pick(params, 'command', 'cmd'),
        timeoutMs: pick(params, 'timeoutMs', 'timeout'),
        cwd: pick(params, 'cwd', 'workingDirectory', 'folder'),
      }),
    ),
};
