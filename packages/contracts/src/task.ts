import { z } from 'zod';
import { ActionName } from './actions.js';

/** What a task id may be: it names a job, a directory under /workspace and Redis keys. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
export const TaskId = z.string().regex(TASK_ID_PATTERN, 'a task id is 1 to 128 letters, digits, "_" or "-"');
export type TaskId = z.infer<typeof TaskId>;

/** Keys that would reach Object.prototype through a careless merge. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const MetadataRecord = z
  .record(z.string().min(1).max(64), z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]))
  .refine((m) => Object.keys(m).length <= 32, 'metadata has more than 32 keys');

/**
 * Free-form labels of a task. Checked on the raw input: a record parse would silently drop a
 * `__proto__` key, and we want the caller told.
 */
export const TaskMetadata = z.preprocess((raw, ctx) => {
  if (raw !== null && typeof raw === 'object') {
    for (const key of Object.keys(raw)) {
      if (FORBIDDEN_KEYS.has(key))
        ctx.issues.push({ code: 'custom', message: `metadata key "${key}" is not allowed`, input: raw, path: [key] });
    }
  }
  return raw;
}, MetadataRecord);
export type TaskMetadata = z.infer<typeof TaskMetadata>;

/** A label to find a task by (`GET /v1/jobs?tag=`); part of Redis keys, hence the narrow alphabet. */
export const TAG_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const TaskTag = z.string().regex(TAG_PATTERN, 'a tag is 1 to 64 letters, digits, "_", ".", ":" or "-"');
export type TaskTag = z.infer<typeof TaskTag>;

/** Tags one task may carry. */
export const MAX_TAGS = 10;

/** How urgent a task is: 1 (least) to 10 (most); a task without one is {@link DEFAULT_PRIORITY}. */
export const TaskPriority = z.number().int().min(1).max(10);
export type TaskPriority = z.infer<typeof TaskPriority>;
export const DEFAULT_PRIORITY = 5;

/** Longest `ttlSeconds`: as long as an unfinished task's record lives. */
export const MAX_TTL_SECONDS = 30 * 86_400;

/** `POST /v1/jobs` body; also the task job's payload and what the CLI sends. */
export const TaskRequest = z.strictObject({
  prompt: z
    .string({ error: 'prompt is required and must be a string' })
    .trim()
    .min(1, 'prompt must not be empty')
    .max(100_000, 'prompt is longer than 100000 characters')
    .refine((s) => !s.includes('\u0000'), 'prompt must not contain NUL characters'),
  maxSteps: z.number().int().min(1).max(500).optional(),
  timeoutSeconds: z.number().int().min(1).max(86_400).optional(),
  model: z.string().min(1).max(200).optional(),
  metadata: TaskMetadata.optional(),
  tags: z
    .array(TaskTag)
    .max(MAX_TAGS, `a task has at most ${MAX_TAGS} tags`)
    .refine((tags) => new Set(tags).size === tags.length, 'tags must not repeat')
    .optional(),
  priority: TaskPriority.optional(),
  /** A task not started this long after it was submitted ends `failed` with error code `expired`. */
  ttlSeconds: z.number().int().min(1).max(MAX_TTL_SECONDS).optional(),
});
export type TaskRequest = z.infer<typeof TaskRequest>;

export const TASK_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export const TaskStatus = z.enum(TASK_STATUSES);
export type TaskStatus = z.infer<typeof TaskStatus>;
export const FINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];

export const Phase = z.enum(['queued', 'starting', 'thinking', 'running-step', 'finishing', 'done']);
export type Phase = z.infer<typeof Phase>;

export const TaskProgress = z.object({
  step: z.number().int().nonnegative(),
  maxSteps: z.number().int().positive(),
  phase: Phase,
});
export type TaskProgress = z.infer<typeof TaskProgress>;

export const StepStatus = z.enum(['waiting', 'running', 'completed', 'failed']);
export type StepStatus = z.infer<typeof StepStatus>;

export const TaskError = z.object({ code: z.string(), message: z.string() });
export type TaskError = z.infer<typeof TaskError>;

export const StepView = z.object({
  index: z.number().int().nonnegative(),
  action: ActionName,
  status: StepStatus,
  attempts: z.number().int().nonnegative(),
  exitCode: z.number().int().optional(),
  durationMs: z.number().nonnegative().optional(),
  /** A step whose outcome is a refusal (`disk_quota_exceeded`, `path_outside_workspace`, …): its code and message. */
  error: TaskError.optional(),
});
export type StepView = z.infer<typeof StepView>;

export const ResultFile = z.object({ path: z.string(), size: z.number().int().nonnegative() });
export type ResultFile = z.infer<typeof ResultFile>;

export const TaskResult = z.object({
  summary: z.string(),
  files: z.array(ResultFile),
});
export type TaskResult = z.infer<typeof TaskResult>;

export const TaskErrorCode = z.enum([
  'max_steps',
  'timeout',
  'cancelled',
  'expired',
  'llm_error',
  'sandbox_error',
  'internal',
]);
export type TaskErrorCode = z.infer<typeof TaskErrorCode>;

/**
 * What a task used, written as it runs: model calls and their tokens (as the provider reports
 * them; the offline model reports none), finished steps, the time its commands ran in the
 * sandbox, and the bytes its web fetches received.
 */
export const TaskUsage = z.object({
  modelCalls: z.number().int().nonnegative(),
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  steps: z.number().int().nonnegative(),
  commandMs: z.number().int().nonnegative(),
  fetchedBytes: z.number().int().nonnegative(),
});
export type TaskUsage = z.infer<typeof TaskUsage>;
export const USAGE_FIELDS = [
  'modelCalls',
  'promptTokens',
  'completionTokens',
  'steps',
  'commandMs',
  'fetchedBytes',
] as const satisfies readonly (keyof TaskUsage)[];

/** `GET /v1/jobs/:id`. */
export const TaskView = z.object({
  id: z.string(),
  status: TaskStatus,
  prompt: z.string(),
  createdAt: z.iso.datetime(),
  startedAt: z.iso.datetime().optional(),
  finishedAt: z.iso.datetime().optional(),
  workerId: z.string().optional(),
  progress: TaskProgress,
  steps: z.array(StepView),
  result: TaskResult.optional(),
  error: TaskError.optional(),
  metadata: TaskMetadata.optional(),
  /** The tenant of the key that submitted it (an API before tenants sent none). */
  tenant: z.string().optional(),
  /** Always sent by this API (optional for answers of older ones). */
  tags: z.array(z.string()).optional(),
  /** Always sent by this API (optional for answers of older ones). */
  usage: TaskUsage.optional(),
});
export type TaskView = z.infer<typeof TaskView>;

/** `POST /v1/jobs` answer (202). */
export const TaskAccepted = z.object({
  id: z.string(),
  status: TaskStatus,
  createdAt: z.iso.datetime(),
  links: z.object({ self: z.string(), events: z.string(), files: z.string(), cancel: z.string() }),
});
export type TaskAccepted = z.infer<typeof TaskAccepted>;
