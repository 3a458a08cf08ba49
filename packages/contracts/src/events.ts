import { z } from 'zod';
import { ActionName } from './actions.js';
import { StepOutcome, ToolCall } from './tools.js';
import { TaskError, TaskProgress, TaskResult, TaskStatus } from './task.js';

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
