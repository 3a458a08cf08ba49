import { z } from 'zod';
import { actionsOfTool, type AnyAction, type DaytonaAction, type ToolName, toolOf } from '@research/contracts';
import type { ToolArgsResult, ToolDefinition } from './types.js';

type JsonProperties = Record<string, Record<string, unknown>>;

function inputSchema(a: AnyAction): { properties: JsonProperties; required: string[] } {
  const json = z.toJSONSchema(a.params, { io: 'input' }) as { properties?: JsonProperties; required?: string[] };
  return { properties: json.properties ?? {}, required: json.required ?? [] };
}

/**
 * Each parameter's description; with several actions, saying which actions take it: one flat
 * schema carries every action's parameters, so the model needs to know which belong together.
 */
function paramDocs(actions: readonly AnyAction[]): Record<string, string> {
  const single = actions.length === 1;
  const docs: Record<string, string> = { action: 'which operation to run in the sandbox' };
  const takers = new Map<string, { actions: string[]; doc: string }>();
  for (const a of actions) {
    for (const [key, doc] of Object.entries(a.paramDocs)) {
      const entry = takers.get(key) ?? { actions: [], doc };
      entry.actions.push(a.name);
      takers.set(key, entry);
    }
  }
  for (const [key, { actions: names, doc }] of takers) docs[key] = single ? doc : `${names.join(', ')}: ${doc}`;
  return docs;
}

/**
 * One flat object schema for native function calling, derived from the zod variants: the
 * chat-completions protocol wants `type: "object"` at the top, which a `oneOf` is not.
 * Which parameters an action needs is in the descriptions; zod checks them on the way in.
 * A tool with one action has no `action` parameter at all.
 */
function flatParameters(actions: readonly AnyAction[]): Record<string, unknown> {
  const docs = paramDocs(actions);
  const single = actions.length === 1 ? actions[0] : undefined;
  const properties: JsonProperties = single
    ? {}
    : { action: { type: 'string', enum: actions.map((a) => a.name), description: docs.action } };
  for (const a of actions) {
    for (const [key, prop] of Object.entries(inputSchema(a).properties)) {
      if (key === 'action' || properties[key]) continue;
      properties[key] = { ...prop, description: docs[key] ?? key };
    }
  }
  const required = single ? inputSchema(single).required.filter((k) => k !== 'action') : ['action'];
  return { type: 'object', properties, required, additionalProperties: false };
}

/** `command, optional timeoutMs, optional cwd`: the action's parameters as the prompt names them. */
export function parameterList(a: AnyAction): string {
  const { properties, required } = inputSchema(a);
  const keys = Object.keys(properties).filter((k) => k !== 'action');
  return keys.map((k) => (required.includes(k) ? k : `optional ${k}`)).join(', ');
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

function validate(entry: AnyAction, params: Record<string, unknown>): ToolArgsResult {
  const parsed = entry.params.safeParse(params);
  if (!parsed.success) return { ok: false, error: describeIssues(entry.name, parsed.error, params) };
  return { ok: true, action: parsed.data };
}

/** Validates raw parameters of `tool` into an action of that tool, with messages meant for the model. */
export function toToolAction(tool: ToolName, params: Record<string, unknown>): ToolArgsResult {
  const actions = actionsOfTool(tool);
  const names = actions.map((a) => a.name);
  const [only] = actions;
  if (only && actions.length === 1) {
    // The action is implied; a model that names it anyway (as for daytona-execute) is understood.
    const { action, ...rest } = params;
    if (action !== undefined && action !== only.name)
      return { ok: false, error: `${tool} takes no "action" parameter; its one action is ${only.name}` };
    return validate(only, { ...rest, action: only.name });
  }
  const action = params.action;
  if (action === undefined) return { ok: false, error: `missing parameter "action" (one of ${names.join(', ')})` };
  const entry = typeof action === 'string' ? actions.find((a) => a.name === action) : undefined;
  if (!entry) return { ok: false, error: `unknown action ${JSON.stringify(action)}; use one of ${names.join(', ')}` };
  return validate(entry, params);
}

/**
 * The parameters a call is written with: the action's, without `action` for a single-action
 * tool (`<web-search query="…"/>`), with `action` first otherwise. The XML renderer and the
 * offline model's native calls use it.
 */
export function toolParameters(args: DaytonaAction): { tool: ToolName; params: Record<string, unknown> } {
  const tool = toolOf(args);
  const single = actionsOfTool(tool).length === 1;
  const entries = Object.entries(args).filter(([k, v]) => v !== undefined && !(single && k === 'action'));
  entries.sort(([a], [b]) => (a === 'action' ? -1 : b === 'action' ? 1 : 0));
  return { tool, params: Object.fromEntries(entries) };
}

/**
 * A tool of the action catalog: its schema, description and validation all derive from the
 * catalog entries of its actions. `describe` gets the tool's actions with their parameter lists.
 */
export function catalogTool(tool: ToolName, describe: (actions: string) => string): ToolDefinition {
  const actions = actionsOfTool(tool);
  const list =
    actions.length === 1 && actions[0]
      ? parameterList(actions[0])
      : actions.map((a) => `${a.name} (${parameterList(a)})`).join(', ');
  return {
    name: tool,
    description: describe(list),
    parameters: flatParameters(actions),
    toAction: (params) => toToolAction(tool, params),
  };
}
