import { z } from 'zod';
import {
  ActionName,
  DEFAULT_PRIORITY,
  DaytonaAction,
  exitCodeOf,
  type StepOutcome,
  summarizeAction,
  TaskId,
  TaskRequest,
  WebhookEvent,
} from '@research/contracts';
import type { JobsOptions, QueueOptions, WorkerOptions } from 'bullmq';
import type { Redis } from './connection.js';
import type { RetryPolicy } from './retry.js';

/** Payload of a task job in the `agent` queue. Parsed again when a worker dequeues it. */
export const TaskJobData = z.object({
  taskId: TaskId,
  /** The submit; the API keeps its `files` with the task (`TaskStore.inputs`), out of this payload. */
  request: TaskRequest,
  createdAt: z.iso.datetime(),
  /** How many input files wait with the task to be placed before its first step. Default: none. */
  inputFiles: z.number().int().min(0).optional(),
});
export type TaskJobData = z.infer<typeof TaskJobData>;

/** Payload of an expiry check in the `expiry` queue (its job id is the task's). */
export const ExpiryJobData = z.object({ taskId: TaskId, ttlSeconds: z.number().int().positive() });
export type ExpiryJobData = z.infer<typeof ExpiryJobData>;

/** Whether a task submitted at `createdAt` with `ttlSeconds` may no longer start at `nowMs`. */
export function isExpired(ttlSeconds: number | undefined, createdAt: string, nowMs = Date.now()): boolean {
  return ttlSeconds !== undefined && nowMs >= Date.parse(createdAt) + ttlSeconds * 1_000;
}

/** The error message of a task that expired (error code `expired`). */
export function expiryMessage(ttlSeconds: number): string {
  return `the task did not start within ${ttlSeconds} s of its submission (ttlSeconds=${ttlSeconds})`;
}

/** Payload of a step job in `steps.<workerId>`. */
export const StepJobData = z.object({
  taskId: TaskId,
  stepIndex: z.number().int().nonnegative(),
  callId: z.string(),
  action: DaytonaAction,
});
export type StepJobData = z.infer<typeof StepJobData>;

/**
 * What a step job returns: a summary for the dashboard. The outcome itself (a file's content, a
 * command's output) is kept once, with the task's step records, and read from there.
 */
export const StepJobResult = z.object({
  ok: z.boolean(),
  action: ActionName.optional(),
  exitCode: z.number().int().optional(),
  /** A refused action's error code (`path_outside_workspace`, …). */
  refused: z.string().optional(),
});
export type StepJobResult = z.infer<typeof StepJobResult>;

/** The summary a step job returns for `outcome`. */
export function stepJobResult(outcome: StepOutcome): StepJobResult {
  if (!outcome.ok) return { ok: false, refused: outcome.error.code };
  const exitCode = exitCodeOf(outcome.result);
  return exitCode === undefined
    ? { ok: true, action: outcome.result.action }
    : { ok: true, action: outcome.result.action, exitCode };
}

/** Payload of a webhook delivery job in the `webhooks` queue: the body is fixed, each attempt signs it anew. */
export const WebhookJobData = z.object({
  taskId: TaskId,
  /** The `webhook-id` and the job id. */
  deliveryId: z.string().min(1).max(200),
  event: WebhookEvent,
  type: z.string(),
  url: z.string(),
  /** The JSON body, as sent on every attempt. */
  payload: z.string(),
});
export type WebhookJobData = z.infer<typeof WebhookJobData>;

interface CatalogEntry<S extends z.ZodType> {
  schema: S;
  /** Readable job name for the dashboard. */
  name: (data: z.infer<S>) => string;
  retry: RetryPolicy;
  /** Other job options of the kind (what a failure does to the job's parent, …). */
  options?: JobsOptions;
  removeOnComplete: JobsOptions['removeOnComplete'];
  removeOnFail: JobsOptions['removeOnFail'];
}

const DAY_S = 86_400;

function firstWords(text: string, max = 48): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * The job catalog: each kind of job with its schema, retry policy and retention.
 * Retention keeps Redis bounded: finished jobs are dropped by age and count.
 */
export const JOBS = {
  task: {
    schema: TaskJobData,
    name: (d: TaskJobData) => `research: ${firstWords(d.request.prompt)}`,
    retry: {
      // A task retries from its checkpoint (finished steps are not re-run). A model failure
      // ends it at once: the provider has already spent its retries on the request.
      attempts: 3,
      backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
      // A task whose worker died resumes elsewhere; only a task that keeps killing workers fails.
      maxStalledCount: 3,
    },
    removeOnComplete: { age: 7 * DAY_S, count: 10_000 },
    removeOnFail: { age: 14 * DAY_S, count: 10_000 },
  } satisfies CatalogEntry<typeof TaskJobData>,
  step: {
    schema: StepJobData,
    name: (d: StepJobData) =>
      `step ${d.stepIndex + 1} · ${d.action.action} · ${firstWords(summarizeAction(d.action), 40)}`,
    retry: {
      // Infrastructure failures (container gone, Docker API error) retry; a command's own failure is a result.
      attempts: 3,
      backoff: { type: 'exponential', delay: 250, jitter: 0.5 },
      // A Redis outage longer than the lock makes every running step "stalled"; re-delivery is
      // harmless (the step is answered from its record, not run again), failing it is not.
      maxStalledCount: 3,
    },
    // A step that fails for good leaves the task's dependencies, so the task can still finish.
    options: { removeDependencyOnFailure: true },
    removeOnComplete: { age: 1 * DAY_S, count: 50_000 },
    removeOnFail: { age: 7 * DAY_S, count: 10_000 },
  } satisfies CatalogEntry<typeof StepJobData>,
  expiry: {
    schema: ExpiryJobData,
    name: (d: ExpiryJobData) => `expire ${d.taskId}`,
    retry: {
      // The check is one guarded transition: retrying it is always safe, and a check that never
      // runs only leaves the task to the check a worker makes when it picks the task up.
      attempts: 5,
      backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
      maxStalledCount: 3,
    },
    removeOnComplete: true,
    removeOnFail: { age: 1 * DAY_S, count: 1_000 },
  } satisfies CatalogEntry<typeof ExpiryJobData>,
  webhook: {
    schema: WebhookJobData,
    name: (d: WebhookJobData) => `webhook ${d.type} · ${d.taskId}`,
    retry: {
      // At least once, over minutes: 5 s, 10 s, 20 s, … — 8 attempts span about 10 minutes, so a
      // receiver that is being redeployed still gets it. WEBHOOK_ATTEMPTS / WEBHOOK_BACKOFF_MS
      // override both (tests use a short backoff).
      attempts: 8,
      backoff: { type: 'exponential', delay: 5_000, jitter: 0.2 },
      maxStalledCount: 3,
    },
    removeOnComplete: { age: 1 * DAY_S, count: 10_000 },
    removeOnFail: { age: 7 * DAY_S, count: 10_000 },
  } satisfies CatalogEntry<typeof WebhookJobData>,
} as const;

export type JobKind = keyof typeof JOBS;

/**
 * How many fair-share tags (see FairShare) one task priority spans: a task job's BullMQ priority
 * is its task priority's band times this, plus its tag, so 10 bands fit under BullMQ's 2^21.
 */
export const FAIR_TAG_SPAN = 2 ** 17;

/**
 * BullMQ's priority for a task's `priority` (1 least urgent … 10 most) and its fair-share tag:
 * BullMQ runs lower numbers first, so the band comes first (10 → band 0, 5, the default, → 5,
 * 1 → 9) and the tag orders tasks within it (each tenant's n-th waiting task beside every other
 * tenant's n-th). Every task gets one, because BullMQ takes jobs without a priority before all
 * prioritized ones: a task that left it out would jump the queue. Equal values keep their
 * submit order.
 */
export function bullmqPriority(priority: number | undefined, fairTag = 1): number {
  const tag = Math.min(Math.max(1, Math.floor(fairTag)), FAIR_TAG_SPAN - 1);
  return (10 - (priority ?? DEFAULT_PRIORITY)) * FAIR_TAG_SPAN + tag;
}

/** The fair-share tag inside a task job's BullMQ priority. */
export function fairTagOf(bullmqPriorityValue: number): number {
  return bullmqPriorityValue % FAIR_TAG_SPAN;
}

/** Options of a task's job: the catalog's, with its id and priority (its fair-share tag: 1 when untagged). */
export function taskJobOptions(taskId: string, request: TaskRequest, fairTag = 1): JobsOptions {
  return jobOptions('task', { jobId: taskId, priority: bullmqPriority(request.priority, fairTag) });
}

/** Job options from the catalog, for `queue.add(name, data, jobOptions('task', {...}))`. */
export function jobOptions(kind: JobKind, extra: JobsOptions = {}): JobsOptions {
  const entry: Pick<CatalogEntry<z.ZodType>, 'retry' | 'options' | 'removeOnComplete' | 'removeOnFail'> = JOBS[kind];
  return {
    attempts: entry.retry.attempts,
    backoff: entry.retry.backoff,
    removeOnComplete: entry.removeOnComplete,
    removeOnFail: entry.removeOnFail,
    ...entry.options,
    ...extra,
  };
}

/**
 * Options of the Worker that runs jobs of `kind`: the catalog's stall handling, with what the
 * process decides (connection, concurrency, lock timing).
 */
export function workerOptions(
  kind: JobKind,
  options: Pick<WorkerOptions, 'connection' | 'prefix' | 'concurrency' | 'lockDuration' | 'stalledInterval'>,
): WorkerOptions {
  return { ...options, maxStalledCount: JOBS[kind].retry.maxStalledCount };
}

/** BullMQ stream of queue events is capped so Redis does not grow without bound. */
export const QUEUE_EVENTS_MAX_LEN = 2_000;

/**
 * Options for every `Queue` we open. The events cap must be passed each time: BullMQ writes it
 * into the queue's metadata whenever a `Queue` is created, and its default is 10,000.
 *
 * `connection` should not be the task store's: a `Queue` loads BullMQ's scripts (64) onto its
 * connection, and ioredis copies every script of a connection onto each MULTI built there, which
 * made each of the store's MULTIs cost about 0.1 ms more CPU. The API and the worker each open
 * their queues on a connection of their own.
 */
export function queueOptions(connection: Redis, prefix: string): QueueOptions {
  return { connection, prefix, streams: { events: { maxLen: QUEUE_EVENTS_MAX_LEN } } };
}
