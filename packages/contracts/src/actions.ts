/**
 * The action catalog: every action a model can have run, with everything the layers need to know
 * about it. The parser and tool registry, the system prompt, the job catalog, the worker's effect
 * rules, the sandbox's request mapping, the CLI and the dashboard all read it; adding an action is
 * one entry here plus its executor. The sandbox actions are below, the web ones in web-actions.ts.
 */
import { z } from 'zod';
import {
  type ActionEffects,
  actionParams,
  actionResult,
  defineAction,
  NO_EFFECTS,
  type RunsIn,
} from './action-definition.js';
import { webFetch, webSearch } from './web-actions.js';

export type { ActionDefinition, ActionEffects, RunsIn } from './action-definition.js';

const DAYTONA_EXECUTE = 'daytona-execute' as const;

const filePath = z.string().min(1, 'filePath must not be empty').max(4096, 'filePath is longer than 4096 characters');
const PATH_DOC = 'path of the file, relative to the task directory';

export const CreateFileAction = actionParams('create-file', {
  filePath,
  /** Full new content; an existing file is overwritten. */
  content: z.string().max(10 * 1024 * 1024, 'content is larger than 10 MiB'),
});
export type CreateFileAction = z.infer<typeof CreateFileAction>;

export const CreateFileResult = actionResult('create-file', {
  path: z.string(),
  bytes: z.number().int().nonnegative(),
  overwritten: z.boolean(),
});
export type CreateFileResult = z.infer<typeof CreateFileResult>;

export const ExecuteCommandAction = actionParams('execute-command', {
  command: z.string().min(1, 'command must not be empty').max(100_000, 'command is longer than 100000 characters'),
  /** Capped by SANDBOX_COMMAND_TIMEOUT_MS. */
  timeoutMs: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 3_600_000)
    .optional(),
  /** Relative to the task directory. Default: the task directory. */
  cwd: z.string().min(1).max(4096).optional(),
});
export type ExecuteCommandAction = z.infer<typeof ExecuteCommandAction>;

export const ExecuteCommandResult = actionResult('execute-command', {
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  timedOut: z.boolean(),
  /** True when stdout or stderr was cut at SANDBOX_MAX_OUTPUT_BYTES. */
  truncated: z.boolean(),
  durationMs: z.number().nonnegative(),
});
export type ExecuteCommandResult = z.infer<typeof ExecuteCommandResult>;

export const ReadFileAction = actionParams('read-file', {
  filePath,
});
export type ReadFileAction = z.infer<typeof ReadFileAction>;

export const ReadFileResult = actionResult('read-file', {
  path: z.string(),
  size: z.number().int().nonnegative(),
  /** UTF-8 text; empty when `binary`. */
  content: z.string(),
  binary: z.boolean(),
  truncated: z.boolean(),
});
export type ReadFileResult = z.infer<typeof ReadFileResult>;

export const ListFilesAction = actionParams('list-files', {
  /** Relative to the task directory. Default: `.`. */
  path: z.string().min(1).max(4096).optional(),
});
export type ListFilesAction = z.infer<typeof ListFilesAction>;

export const FileEntry = z.object({
  /** Relative to the task directory, `/`-separated. */
  path: z.string(),
  size: z.number().int().nonnegative(),
  type: z.enum(['file', 'dir', 'symlink', 'other']),
});
export type FileEntry = z.infer<typeof FileEntry>;

export const ListFilesResult = actionResult('list-files', {
  path: z.string(),
  files: z.array(FileEntry),
  truncated: z.boolean(),
});
export type ListFilesResult = z.infer<typeof ListFilesResult>;

const createFile = defineAction({
  name: 'create-file',
  tool: DAYTONA_EXECUTE,
  runsIn: 'sandbox',
  params: CreateFileAction,
  result: CreateFileResult,
  effects: { ...NO_EFFECTS, writesWorkspace: true },
  pathParams: ['filePath'],
  paramDocs: { filePath: PATH_DOC, content: 'the full new content of the file (an existing file is overwritten)' },
  prompt: 'filePath, content — writes the whole file (overwrites).',
  example: {
    note: 'Create todo.md first',
    args: {
      action: 'create-file',
      filePath: 'todo.md',
      content: '# Financial Analysis Project\n- [ ] Gather market data\n- [ ] Run calculations\n- [ ] Write report.md',
    },
  },
  summary: (a) => a.filePath,
  describe: (r) => `${r.overwritten ? 'overwrote' : 'created'} ${r.path} (${r.bytes} bytes)`,
});

const executeCommand = defineAction({
  name: 'execute-command',
  tool: DAYTONA_EXECUTE,
  runsIn: 'sandbox',
  params: ExecuteCommandAction,
  result: ExecuteCommandResult,
  effects: { ...NO_EFFECTS, readsWorkspace: true, writesWorkspace: true, runsCode: true },
  pathParams: ['cwd'],
  paramDocs: {
    command: 'shell command run with bash in the task directory',
    timeoutMs: 'optional time limit in milliseconds',
    cwd: 'optional working directory, relative to the task directory',
  },
  prompt: 'command, optional timeoutMs, cwd — runs a bash command; you get exit code, stdout and stderr.',
  example: {
    note: 'Run Python in the container',
    args: { action: 'execute-command', command: "python3 -c 'import pandas as pd; print(pd.__version__)'" },
  },
  summary: (a) => a.command,
  describe: (r) => {
    const notes = [
      r.timedOut ? 'the command timed out and was killed' : '',
      r.truncated ? 'output was cut by the sandbox' : '',
    ]
      .filter(Boolean)
      .join('; ');
    return [
      `exit code: ${r.exitCode}${notes ? ` (${notes})` : ''}`,
      `stdout:\n${r.stdout}`,
      ...(r.stderr ? [`stderr:\n${r.stderr}`] : []),
    ].join('\n');
  },
});

const readFile = defineAction({
  name: 'read-file',
  tool: DAYTONA_EXECUTE,
  runsIn: 'sandbox',
  params: ReadFileAction,
  result: ReadFileResult,
  effects: { ...NO_EFFECTS, readsWorkspace: true },
  pathParams: ['filePath'],
  paramDocs: { filePath: PATH_DOC },
  prompt: 'filePath — returns the file content.',
  example: { note: 'Read results back', args: { action: 'read-file', filePath: 'analysis_results.json' } },
  summary: (a) => a.filePath,
  describe: (r) =>
    r.binary
      ? `${r.path} (${r.size} bytes) is binary; its content is not shown`
      : `${r.path} (${r.size} bytes${r.truncated ? ', cut by the sandbox' : ''}):\n${r.content}`,
});

const listFiles = defineAction({
  name: 'list-files',
  tool: DAYTONA_EXECUTE,
  runsIn: 'sandbox',
  params: ListFilesAction,
  result: ListFilesResult,
  effects: { ...NO_EFFECTS, readsWorkspace: true },
  pathParams: ['path'],
  paramDocs: { path: 'optional directory to list, relative to the task directory (default ".")' },
  prompt: 'optional path — lists files below the task directory.',
  example: { note: 'See what the task directory holds', args: { action: 'list-files', path: '.' } },
  summary: (a) => a.path ?? '.',
  describe: (r) => {
    const lines = r.files.map(
      (f) => `${f.type === 'dir' ? `${f.path}/` : f.path}${f.type === 'file' ? `  ${f.size} bytes` : ''}`,
    );
    return [`${r.files.length} entries under ${r.path}${r.truncated ? ' (list cut)' : ''}:`, ...lines].join('\n');
  },
});

/** Every action, in the order the prompt lists them. A new action is added here. */
export const ACTION_LIST = [createFile, executeCommand, readFile, listFiles, webSearch, webFetch] as const;

type Entry = (typeof ACTION_LIST)[number];
type ParamsOf<T extends readonly Entry[]> = { -readonly [K in keyof T]: T[K]['params'] };
type ResultsOf<T extends readonly Entry[]> = { -readonly [K in keyof T]: T[K]['result'] };
type NamesOf<T extends readonly Entry[]> = { -readonly [K in keyof T]: T[K]['name'] };

export const ACTIONS = ACTION_LIST.map((a) => a.name) as NamesOf<typeof ACTION_LIST>;
export const ActionName = z.enum(ACTIONS);
export type ActionName = z.infer<typeof ActionName>;

/** The tools a model calls; each runs one or more actions. */
export const TOOLS = [...new Set(ACTION_LIST.map((a) => a.tool))] as [Entry['tool'], ...Entry['tool'][]];
export const ToolName = z.enum(TOOLS);
export type ToolName = z.infer<typeof ToolName>;

/**
 * One call of an action, validated: any action of the catalog, the web ones included (the name
 * is older than the web tools). `SandboxAction` is the part the sandbox runs.
 */
export const DaytonaAction = z.discriminatedUnion(
  'action',
  ACTION_LIST.map((a) => a.params) as ParamsOf<typeof ACTION_LIST>,
);
export type DaytonaAction = z.infer<typeof DaytonaAction>;

export const ActionResult = z.discriminatedUnion(
  'action',
  ACTION_LIST.map((a) => a.result) as ResultsOf<typeof ACTION_LIST>,
);
export type ActionResult = z.infer<typeof ActionResult>;

/** The actions that run in the task's sandbox container; the others run in the worker. */
export type SandboxAction = z.output<Extract<Entry, { runsIn: 'sandbox' }>['params']>;
/** The actions that run in the worker process (the web tools, under the egress policy). */
export type WorkerAction = z.output<Extract<Entry, { runsIn: 'worker' }>['params']>;

/** The catalog entry of one action, seen through the type every entry shares. */
export interface AnyAction {
  readonly name: ActionName;
  readonly tool: ToolName;
  readonly runsIn: RunsIn;
  readonly params: z.ZodType<DaytonaAction>;
  readonly result: z.ZodType<ActionResult>;
  readonly effects: ActionEffects;
  readonly pathParams: readonly string[];
  readonly paramDocs: Readonly<Record<string, string>>;
  readonly prompt: string;
  readonly example: { readonly note: string; readonly args: DaytonaAction };
  summary(args: DaytonaAction): string;
  describe(result: ActionResult): string;
}

const BY_NAME = new Map<string, AnyAction>(ACTION_LIST.map((a) => [a.name, a as unknown as AnyAction]));

/** The catalog entry of `name`; throws for a name that is not an action (a programming error). */
export function actionOf(name: ActionName): AnyAction {
  const entry = BY_NAME.get(name);
  if (!entry) throw new TypeError(`unknown action ${JSON.stringify(name)}`);
  return entry;
}

/** Whether `name` is an action of the catalog. */
export function isActionName(name: unknown): name is ActionName {
  return typeof name === 'string' && BY_NAME.has(name);
}

/** The call on one line, unbounded (see `ActionDefinition.summary`). */
export function summarizeAction(args: DaytonaAction): string {
  return actionOf(args.action).summary(args);
}

/** The result as the model reads it (see `ActionDefinition.describe`). */
export function describeActionResult(result: ActionResult): string {
  return actionOf(result.action).describe(result);
}

/** The exit code of a result that has one (a command's), else undefined. */
export function exitCodeOf(result: ActionResult): number | undefined {
  return 'exitCode' in result ? result.exitCode : undefined;
}

/** Whether the sandbox runs this call (else the worker does). */
export function isSandboxAction(args: DaytonaAction): args is SandboxAction {
  return actionOf(args.action).runsIn === 'sandbox';
}

/** The tool that runs `args`: the tool of its action. */
export function toolOf(args: DaytonaAction): ToolName {
  return actionOf(args.action).tool;
}

/** The actions `tool` runs, in catalog order. */
export function actionsOfTool(tool: ToolName): AnyAction[] {
  return [...BY_NAME.values()].filter((a) => a.tool === tool);
}
