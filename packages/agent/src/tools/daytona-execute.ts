import { z } from 'zod';
import {
  ACTIONS,
  CreateFileAction,
  ExecuteCommandAction,
  ListFilesAction,
  ReadFileAction,
  type ActionName,
  type DaytonaAction,
} from '@research/contracts';
import type { ToolArgsResult, ToolDefinition } from './types.js';

export const DAYTONA_EXECUTE = 'daytona-execute';

const VARIANTS: Record<ActionName, z.ZodObject> = {
  'create-file': CreateFileAction,
  'execute-command': ExecuteCommandAction,
  'read-file': ReadFileAction,
  'list-files': ListFilesAction,
};

const PARAM_DOCS: Record<string, string> = {
  action: 'which operation to run in the sandbox',
  filePath: 'create-file, read-file: path of the file, relative to the task directory',
  content: 'create-file: the full new content of the file (an existing file is overwritten)',
  command: 'execute-command: shell command run with bash in the task directory',
  timeoutMs: 'execute-command: optional time limit in milliseconds',
  cwd: 'execute-command: optional working directory, relative to the task directory',
  path: 'list-files: optional directory to list, relative to the task directory (default ".")',
};

/**
 * One flat object schema for native function calling, derived from the zod variants: the
 * chat-completions protocol wants `type: "object"` at the top, which a `oneOf` is not.
 * Which parameters an action needs is in the descriptions; zod checks them on the way in.
 */
function flatParameters(): Record<string, unknown> {
  const properties: Record<string, Record<string, unknown>> = {
    action: { type: 'string', enum: [...ACTIONS], description: PARAM_DOCS.action },
  };
  for (const schema of Object.values(VARIANTS)) {
    const json = z.toJSONSchema(schema, { io: 'input' }) as { properties?: Record<string, Record<string, unknown>> };
    for (const [key, prop] of Object.entries(json.properties ?? {})) {
      if (key === 'action' || properties[key]) continue;
      properties[key] = { ...prop, description: PARAM_DOCS[key] ?? key };
    }
  }
  return { type: 'object', properties, required: ['action'], additionalProperties: false };
}

/** Turns zod's issues into one sentence a model can act on. */
function describeIssues(action: string, error: z.ZodError, params: Record<string, unknown>): string {
  const parts = error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys')
      return `unknown parameter${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    const key = issue.path.join('.');
    // zod 4 leaves the input out of its issues, so whether the parameter was given is read from
    // the parameters: `timeoutMs="soon"` is a wrong value, not a missing one.
    const given = issue.path.length === 1 ? params[String(issue.path[0])] : undefined;
    if (issue.code === 'invalid_type' && given === undefined) return `missing parameter "${key}"`;
    if (issue.code === 'invalid_type' && key === 'timeoutMs')
      return `timeoutMs must be a whole number of milliseconds (got ${JSON.stringify(given)})`;
    return `parameter "${key}": ${issue.message}`;
  });
  return `${action}: ${parts.join('; ')}`;
}

/** Validates raw parameters into a DaytonaAction, with messages meant for the model. */
export function toDaytonaAction(params: Record<string, unknown>): ToolArgsResult {
  const action = params.action;
  if (action === undefined) return { ok: false, error: `missing parameter "action" (one of ${ACTIONS.join(', ')})` };
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) {
    return { ok: false, error: `unknown action ${JSON.stringify(action)}; use one of ${ACTIONS.join(', ')}` };
  }
  const schema = VARIANTS[action as ActionName];
  const parsed = schema.safeParse(params);
  if (!parsed.success) return { ok: false, error: describeIssues(action, parsed.error, params) };
  return { ok: true, action: parsed.data as DaytonaAction };
}

export const daytonaExecuteTool: ToolDefinition = {
  name: DAYTONA_EXECUTE,
  description:
    "Runs one operation in the secure sandbox container, inside this task's directory under /workspace: " +
    'create-file (filePath, content), execute-command (command, optional timeoutMs, cwd), ' +
    'read-file (filePath), list-files (optional path). Every file and every command goes through this tool.',
  parameters: flatParameters(),
  toAction: toDaytonaAction,
};
