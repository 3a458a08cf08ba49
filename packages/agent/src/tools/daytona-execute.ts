import { z } from 'zod';
import { actionsOfTool, type AnyAction } from '@research/contracts';
import type { ToolArgsResult, ToolDefinition } from './types.js';

export const DAYTONA_EXECUTE = 'daytona-execute';

const ACTIONS_OF_TOOL: readonly AnyAction[] = actionsOfTool(DAYTONA_EXECUTE);
const NAMES = ACTIONS_OF_TOOL.map((a) => a.name);

/**
 * Each parameter's description, saying which actions take it: one flat schema carries every
 * action's parameters, so the model needs to know which belong together.
 */
function paramDocs(): Record<string, string> {
  const docs: Record<string, string> = { action: 'which operation to run in the sandbox' };
  const takers = new Map<string, { actions: string[]; doc: string }>();
  for (const a of ACTIONS_OF_TOOL) {
    for (const [key, doc] of Object.entries(a.paramDocs)) {
      const entry = takers.get(key) ?? { actions: [], doc };
      entry.actions.push(a.name);
      takers.set(key, entry);
    }
  }
  for (const [key, { actions, doc }] of takers) docs[key] = `${actions.join(', ')}: ${doc}`;
  return docs;
}

/**
 * One flat object schema for native function calling, derived from the zod variants: the
 * chat-completions protocol wants `type: "object"` at the top, which a `oneOf` is not.
 * Which parameters an action needs is in the descriptions; zod checks them on the way in.
 */
function flatParameters(): Record<string, unknown> {
  const docs = paramDocs();
  const properties: Record<string, Record<string, unknown>> = {
    action: { type: 'string', enum: NAMES, description: docs.action },
  };
  for (const a of ACTIONS_OF_TOOL) {
    const json = z.toJSONSchema(a.params, { io: 'input' }) as { properties?: Record<string, Record<string, unknown>> };
    for (const [key, prop] of Object.entries(json.properties ?? {})) {
      if (key === 'action' || properties[key]) continue;
      properties[key] = { ...prop, description: docs[key] ?? key };
    }
  }
  return { type: 'object', properties, required: ['action'], additionalProperties: false };
}

/** `command, optional timeoutMs, optional cwd`: the action's parameters as the prompt names them. */
function parameterList(a: AnyAction): string {
  const json = z.toJSONSchema(a.params, { io: 'input' }) as { properties?: object; required?: string[] };
  const keys = Object.keys(json.properties ?? {}).filter((k) => k !== 'action');
  return keys.map((k) => (json.required?.includes(k) ? k : `optional ${k}`)).join(', ');
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
    // Durations are named by their unit (`timeoutMs`), so the unit goes into the message.
    if (issue.code === 'invalid_type' && key.endsWith('Ms'))
      return `${key} must be a whole number of milliseconds (got ${JSON.stringify(given)})`;
    return `parameter "${key}": ${issue.message}`;
  });
  return `${action}: ${parts.join('; ')}`;
}

/** Validates raw parameters into a DaytonaAction, with messages meant for the model. */
export function toDaytonaAction(params: Record<string, unknown>): ToolArgsResult {
  const action = params.action;
  if (action === undefined) return { ok: false, error: `missing parameter "action" (one of ${NAMES.join(', ')})` };
  const entry = typeof action === 'string' ? ACTIONS_OF_TOOL.find((a) => a.name === action) : undefined;
  if (!entry) return { ok: false, error: `unknown action ${JSON.stringify(action)}; use one of ${NAMES.join(', ')}` };
  const parsed = entry.params.safeParse(params);
  if (!parsed.success) return { ok: false, error: describeIssues(entry.name, parsed.error, params) };
  return { ok: true, action: parsed.data };
}

export const daytonaExecuteTool: ToolDefinition = {
  name: DAYTONA_EXECUTE,
  description:
    "Runs one operation in the secure sandbox container, inside this task's directory under /workspace: " +
    `${ACTIONS_OF_TOOL.map((a) => `${a.name} (${parameterList(a)})`).join(', ')}. ` +
    'Every file and every command goes through this tool.',
  parameters: flatParameters(),
  toAction: toDaytonaAction,
};
