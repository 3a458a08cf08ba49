import { z } from 'zod';
import { ActionName } from './actions.js';
import { StepOutcome, ToolCall } from './tools.js';
import { TaskError, TaskProgress, TaskResult, TaskStatus } from './task.js';
import { WebhookAttempt, WebhookEvent } from './webhooks.js';

const base = { at: z.iso.datetime() };

/**
 * The task's event stream (SSE `GET /v1/jobs/:id/events`). Each event has a stream id that
 * `Last-Event-ID` resumes after; the stream closes after a `status` event with a final status.
 */
export const TaskEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('status'),
    ...base,
    status: TaskStatus,
    workerId: z.string().optional(),
    error: TaskError.optional(),
    result: TaskResult.optional(),
  }),
  z.object({ type: z.literal('progress'), ...base, progress: TaskProgress }),
  z.object({ type: z.literal('turn'), ...base, turn: z.number().int().nonnegative() }),
  z.object({ type: z.literal('assistant_message'), ...base, text: z.string() }),
  z.object({ type: z.literal('tool_call'), ...base, step: z.number().int().nonnegative(), call: ToolCall }),
  z.object({
    type: z.literal('tool_result'),
    ...base,
    step: z.number().int().nonnegative(),
    action: ActionName,
    outcome: StepOutcome,
    durationMs: z.number().nonnegative(),
  }),
  z.object({ type: z.literal('tool_error'), ...base, message: z.string() }),
  /**
   * Output of a running command, as it comes (throttled to about 4 events a second per step,
   * coalesced, at most 64 KiB per step; past it one event with `truncated`). The step's
   * `tool_result` still carries the whole output; these only show it early.
   */
  z.object({
    type: z.literal('tool_output'),
    ...base,
    step: z.number().int().nonnegative(),
    stream: z.enum(['stdout', 'stderr']),
    chunk: z.string(),
    /** This step's live output stops here (its cap was reached); the chunk is the marker. */
    truncated: z.literal(true).optional(),
  }),
  /**
   * Text of a model answer as it streams (LLM_STREAM=true), throttled like `tool_output`: `text`
   * is the answer's content, `tool_call` the arguments of a native function call. The turn's
   * `assistant_message` and `tool_call` events follow with the whole answer.
   */
  z.object({
    type: z.literal('model_delta'),
    ...base,
    turn: z.number().int().positive(),
    part: z.enum(['text', 'tool_call']),
    chunk: z.string(),
    truncated: z.literal(true).optional(),
  }),
  /**
   * One attempt to deliver a webhook (also at `GET /v1/jobs/:id/webhooks`). Deliveries of the
   * final status come after the `status` event that ends the stream: a replay of a finished
   * task shows those made so far.
   */
  z.object({
    type: z.literal('webhook'),
    ...base,
    delivery: z.string(),
    event: WebhookEvent,
    ...WebhookAttempt.omit({ at: true }).shape,
  }),
  z.object({
    type: z.literal('finished'),
    ...base,
    summary: z.string(),
    reason: z.enum(['answer', 'max_steps', 'timeout', 'cancelled', 'error']),
  }),
]);
export type TaskEvent = z.infer<typeof TaskEvent>;
export type TaskEventType = TaskEvent['type'];

/** An event as stored and streamed: with its stream id. */
export type StoredTaskEvent = { id: string; event: TaskEvent };
