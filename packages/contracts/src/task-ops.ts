import { z } from 'zod';
import { TaskRequest, TaskStatus, TaskUsage } from './task.js';

/** Most items one `GET /v1/jobs` page holds, and how many it holds unless `limit` says otherwise. */
export const MAX_LIST_LIMIT = 100;
export const DEFAULT_LIST_LIMIT = 20;

/** `GET /v1/jobs` query. Every field is optional; `cursor` is the `nextCursor` of the page before. */
export const TaskListQuery = z.strictObject({
  status: TaskStatus.optional(),
  tag: z.string().optional(),
  /** Only tasks created after this instant (exclusive, millisecond precision). */
  createdAfter: z.iso.datetime({ offset: true }).optional(),
  /** Only tasks created before this instant (exclusive). */
  createdBefore: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(DEFAULT_LIST_LIMIT),
  cursor: z.string().max(512).optional(),
  /** Admin keys only: one tenant's tasks (default: every tenant's). */
  tenant: z.string().optional(),
});
export type TaskListQuery = z.infer<typeof TaskListQuery>;

/** One task in a list: what finds it again, never the whole view. */
export const TaskListItem = z.object({
  id: z.string(),
  status: TaskStatus,
  createdAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().optional(),
  tags: z.array(z.string()),
  /** The start of the prompt (at most 120 characters, whitespace folded). */
  promptPreview: z.string(),
  tenant: z.string(),
});
export type TaskListItem = z.infer<typeof TaskListItem>;

/** `GET /v1/jobs`: newest first; `nextCursor` is null on the last page. */
export const TaskList = z.object({
  items: z.array(TaskListItem),
  nextCursor: z.string().nullable(),
});
export type TaskList = z.infer<typeof TaskList>;

/** Tasks one `POST /v1/jobs/batch` may carry. */
export const MAX_BATCH_TASKS = 1_000;

/** An Idempotency-Key (the header of `POST /v1/jobs`, or a batch item's `idempotencyKey`). */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** One item of a batch: a task request with its own optional idempotency key. */
export const BatchItem = TaskRequest.extend({
  idempotencyKey: z
    .string()
    .regex(IDEMPOTENCY_KEY_PATTERN, 'idempotencyKey must be 1-128 characters of A-Z a-z 0-9 _ . : -')
    .optional(),
});
export type BatchItem = z.infer<typeof BatchItem>;

/**
 * `POST /v1/jobs/batch` body. The items are read one by one (an invalid one gets its own error
 * in the answer), so here they are only counted.
 */
export const BatchRequest = z.strictObject({
  tasks: z
    .array(z.unknown())
    .min(1, 'tasks must hold at least one task')
    .max(MAX_BATCH_TASKS, `a batch holds at most ${MAX_BATCH_TASKS} tasks`),
});
export type BatchRequest = z.infer<typeof BatchRequest>;

export const BatchItemResult = z.union([
  z.object({ id: z.string() }),
  z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type BatchItemResult = z.infer<typeof BatchItemResult>;

/** The answer to a batch: one result per item, in the items' order. */
export const BatchResult = z.object({
  results: z.array(BatchItemResult),
  /** Items that name a task (new, or the earlier one an idempotency key named). */
  accepted: z.number().int().nonnegative(),
  /** Items refused. */
  refused: z.number().int().nonnegative(),
});
export type BatchResult = z.infer<typeof BatchResult>;

/** A UTC day, `YYYY-MM-DD`: usage is kept per day. */
export const UsageDay = z.iso.date();

/** Most days one `GET /v1/usage` may span. */
export const MAX_USAGE_DAYS = 366;

/** `GET /v1/usage` query: days inclusive; default the 30 days up to today (UTC). */
export const UsageQuery = z.strictObject({
  from: UsageDay.optional(),
  to: UsageDay.optional(),
  /** Admin keys only: one tenant (default: every tenant together). */
  tenant: z.string().optional(),
});
export type UsageQuery = z.infer<typeof UsageQuery>;

/** `GET /v1/usage`: the sums over the days, and each day's. */
export const UsageReport = z.object({
  /** The tenant summed; null when an admin key summed every tenant. */
  tenant: z.string().nullable(),
  from: UsageDay,
  to: UsageDay,
  usage: TaskUsage,
  days: z.array(z.object({ date: UsageDay, usage: TaskUsage })),
});
export type UsageReport = z.infer<typeof UsageReport>;
