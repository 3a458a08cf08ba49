import { z } from 'zod';
import { DaytonaAction, summarizeAction, TaskId, TaskRequest } from '@research/contracts';
import type { BackoffOptions, JobsOptions, QueueOptions } from 'bullmq';
import type { Redis } from './connection.js';

/** Payload of a task job in the `agent` queue. Parsed again when a worker dequeues it. */
export const TaskJobData = z.object({
  taskId: TaskId,
  request: TaskRequest,
  createdAt: z.iso.datetime(),
});
export type TaskJobData = z.infer<typeof TaskJobData>;

/** Payload of a step job in `steps.<workerId>`. */
export const StepJobData = z.object({
  taskId: TaskId,
  stepIndex: z.number().int().nonnegative(),
  callId: z.string(),
  action: DaytonaAction,
});
export type StepJobData = z.infer<typeof StepJobData>;

interface CatalogEntry<S extends z.ZodType> {
  schema: S;
  /** Readable job name for the dashboard. */
  name: (data: z.infer<S>) => string;
  attempts: number;
  backoff: BackoffOptions;
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
    // A task retries from its checkpoint (finished steps are not re-run).
    attempts: 3,
    backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
    removeOnComplete: { age: 7 * DAY_S, count: 10_000 },
    removeOnFail: { age: 14 * DAY_S, count: 10_000 },
  } satisfies CatalogEntry<typeof TaskJobData>,
  step: {
    schema: StepJobData,
    name: (d: StepJobData) =>
      `step ${d.stepIndex + 1} · ${d.action.action} · ${firstWords(summarizeAction(d.action), 40)}`,
    // Infrastructure failures (container gone, Docker API error) retry; a command's own failure is a result.
    attempts: 3,
    backoff: { type: 'exponential', delay: 250, jitter: 0.5 },
    removeOnComplete: { age: 1 * DAY_S, count: 50_000 },
    removeOnFail: { age: 7 * DAY_S, count: 10_000 },
  } satisfies CatalogEntry<typeof StepJobData>,
} as const;

export type JobKind = keyof typeof JOBS;

/** Job options from the catalog, for `queue.add(name, data, jobOptions('task', {...}))`. */
export function jobOptions(kind: JobKind, extra: JobsOptions = {}): JobsOptions {
  const entry = JOBS[kind];
  return {
    attempts: entry.attempts,
    backoff: entry.backoff,
    removeOnComplete: entry.removeOnComplete,
    removeOnFail: entry.removeOnFail,
    ...extra,
  };
}

/** BullMQ stream of queue events is capped so Redis does not grow without bound. */
export const QUEUE_EVENTS_MAX_LEN = 2_000;

/**
 * Options for every `Queue` we open. The events cap must be passed each time: BullMQ writes it
 * into the queue's metadata whenever a `Queue` is created, and its default is 10,000.
 */
export function queueOptions(connection: Redis, prefix: string): QueueOptions {
  return { connection, prefix, streams: { events: { maxLen: QUEUE_EVENTS_MAX_LEN } } };
}
