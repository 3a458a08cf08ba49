import { z } from 'zod';
import { ActionName } from './actions.js';
import { StepOutcome, ToolCall } from './tools.js';
import { TaskError, TaskProgress, TaskResult, TaskStatus } from './task.js';
import { WebhookAttempt, WebhookEvent } from './webhooks.js';

/** An event of `type`: its own fields after `type` and `at`. */
function event<T extends string, S extends z.ZodRawShape>(type: T, fields: S) {
  return z.object({ type: z.literal(type), at: z.iso.datetime(), ...fields });
}

const step = z.number().int().nonnegative();

/** A piece of live output; `truncated` marks the last one, once the cap was reached (the chunk is the marker). */
const live = { chunk: z.string(), truncated: z.literal(true).optional() };

/**
 * The task's event stream (SSE `GET /v1/jobs/:id/events`). Each event has a stream id that
 * `Last-Event-ID` resumes after; the stream closes after a `status` event with a final status.
 */
export const TaskEvent = z.discriminatedUnion('type', [
  event('status', {
    status: TaskStatus,
    workerId: z.string().optional(),
    error: TaskError.optional(),
    result: TaskResult.optional(),
  }),
  event('progress', { progress: TaskProgress }),
  event('turn', { turn: z.number().int().nonnegative() }),
  event('assistant_message', { text: z.string() }),
  event('tool_call', { step, call: ToolCall }),
  event('tool_result', { step, action: ActionName, outcome: StepOutcome, durationMs: z.number().nonnegative() }),
  event('tool_error', { message: z.string() }),
  /**
   * Output of a running command, as it comes (throttled to about 4 events a second per step,
   * coalesced, at most 64 KiB per step; past it one event with `truncated`). The step's
   * `tool_result` still carries the whole output; these only show it early.
   */
  event('tool_output', { step, stream: z.enum(['stdout', 'stderr']), ...live }),
  /**
   * Text of a model answer as it streams (LLM_STREAM=true), throttled like `tool_output`: `text`
   * is the answer's content, `tool_call` the arguments of a native function call. The turn's
   * `assistant_message` and `tool_call` events follow with the whole answer.
   */
  event('model_delta', { turn: z.number().int().positive(), part: z.enum(['text', 'tool_call']), ...live }),
  /**
   * One attempt to deliver a webhook (also at `GET /v1/jobs/:id/webhooks`). Deliveries of the
   * final status come after the `status` event that ends the stream: a replay of a finished
   * task shows those made so far.
   */
  event('webhook', { delivery: z.string(), event: WebhookEvent, ...WebhookAttempt.omit({ at: true }).shape }),
  event('finished', {
    summary: z.string(),
    reason: z.enum(['answer', 'max_steps', 'timeout', 'cancelled', 'error']),
  }),
]);
export type TaskEvent = z.infer<typeof TaskEvent>;
export type TaskEventType = TaskEvent['type'];

/** An event as stored and streamed: with its stream id. */
export type StoredTaskEvent = { id: string; event: TaskEvent };
