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
 * An old tool kept as an alias of daytona-execute's `action`: never advertised, its calls
 * translated by `toAction`, with the arguments and spellings old prompts used.
 */
function alias(
  name: string,
  action: 'create-file' | 'execute-command',
  properties: Record<string, { type: string }>,
  required: string[],
  toAction: ToolDefinition['toAction'],
): ToolDefinition {
  return {
    name,
    description: `Deprecated: use daytona-execute with action="${action}".`,
    deprecated: { replacement: DAYTONA_EXECUTE },
    parameters: { type: 'object', properties, required },
    toAction,
  };
}

/**
 * The seed's local FileCreationTool. It wrote to the host's /tmp; it now only survives as an
 * alias so old prompts keep working, and its calls become sandboxed create-file actions.
 */
export const fileCreationTool = alias(
  'file-creation',
  'create-file',
  { filePath: { type: 'string' }, content: { type: 'string' } },
  ['filePath', 'content'],
  (params) =>
    toDaytonaAction({
      action: 'create-file',
      filePath: pick(params, 'filePath', 'path', 'file_path', 'filename'),
      content: pick(params, 'content'),
    }),
);

/** The seed's host-side CommandExecutionTool, now an alias of a sandboxed execute-command. */
export const executeCommandTool = alias(
  'execute-command',
  'execute-command',
  { command: { type: 'string' }, timeoutMs: { type: 'integer' }, cwd: { type: 'string' } },
  ['command'],
  (params) =>
    toDaytonaAction(
      defined({
        action: 'execute-command',
        command: pick(params, 'command', 'cmd'),
        timeoutMs: pick(params, 'timeoutMs', 'timeout'),
        cwd: pick(params, 'cwd', 'workingDirectory', 'folder'),
      }),
    ),
);
