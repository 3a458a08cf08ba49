import { z } from 'zod';

/** The four actions of the `daytona-execute` tool, as the model sends them. */
export const ACTIONS = ['create-file', 'execute-command', 'read-file', 'list-files'] as const;
export const ActionName = z.enum(ACTIONS);
export type ActionName = z.infer<typeof ActionName>;

const filePath = z.string().min(1, 'filePath must not be empty').max(4096, 'filePath is longer than 4096 characters');

export const CreateFileAction = z.strictObject({
  action: z.literal('create-file'),
  filePath,
  /** Full new content; an existing file is overwritten. */
  content: z.string().max(10 * 1024 * 1024, 'content is larger than 10 MiB'),
});
export type CreateFileAction = z.infer<typeof CreateFileAction>;

export const ExecuteCommandAction = z.strictObject({
  action: z.literal('execute-command'),
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

export const ReadFileAction = z.strictObject({
  action: z.literal('read-file'),
  filePath,
});
export type ReadFileAction = z.infer<typeof ReadFileAction>;

export const ListFilesAction = z.strictObject({
  action: z.literal('list-files'),
  /** Relative to the task directory. Default: `.`. */
  path: z.string().min(1).max(4096).optional(),
});
export type ListFilesAction = z.infer<typeof ListFilesAction>;

/** One `daytona-execute` call, validated. */
export const DaytonaAction = z.discriminatedUnion('action', [
  CreateFileAction,
  ExecuteCommandAction,
  ReadFileAction,
  ListFilesAction,
]);
export type DaytonaAction = z.infer<typeof DaytonaAction>;

/** A tool call as the loop keeps it: the tool's name, the model's call id, the parsed arguments. */
export const ToolCall = z.object({
  /** Id given by the model (native format) or generated (`call_<step>`). */
  id: z.string().min(1),
  tool: z.literal('daytona-execute'),
  args: DaytonaAction,
});
export type ToolCall = z.infer<typeof ToolCall>;

export const FileEntry = z.object({
  /** Relative to the task directory, `/`-separated. */
  path: z.string(),
  size: z.number().int().nonnegative(),
  type: z.enum(['file', 'dir', 'symlink', 'other']),
});
export type FileEntry = z.infer<typeof FileEntry>;

export const CreateFileResult = z.object({
  action: z.literal('create-file'),
  path: z.string(),
  bytes: z.number().int().nonnegative(),
  overwritten: z.boolean(),
});
export type CreateFileResult = z.infer<typeof CreateFileResult>;

export const ExecuteCommandResult = z.object({
  action: z.literal('execute-command'),
  exitCode: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  timedOut: z.boolean(),
  /** True when stdout or stderr was cut at SANDBOX_MAX_OUTPUT_BYTES. */
  truncated: z.boolean(),
  durationMs: z.number().nonnegative(),
});
export type ExecuteCommandResult = z.infer<typeof ExecuteCommandResult>;

export const ReadFileResult = z.object({
  action: z.literal('read-file'),
  path: z.string(),
  size: z.number().int().nonnegative(),
  /** UTF-8 text; empty when `binary`. */
  content: z.string(),
  binary: z.boolean(),
  truncated: z.boolean(),
});
export type ReadFileResult = z.infer<typeof ReadFileResult>;

export const ListFilesResult = z.object({
  action: z.literal('list-files'),
  path: z.string(),
  files: z.array(FileEntry),
  truncated: z.boolean(),
});
export type ListFilesResult = z.infer<typeof ListFilesResult>;

export const ActionResult = z.discriminatedUnion('action', [
  CreateFileResult,
  ExecuteCommandResult,
  ReadFileResult,
  ListFilesResult,
]);
export type ActionResult = z.infer<typeof ActionResult>;

/**
 * What a step produced. A refused action (path outside the workspace, bad parameters) is an
 * outcome the model sees, not a failure of the task.
 */
export const StepOutcome = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), result: ActionResult }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type StepOutcome = z.infer<typeof StepOutcome>;
