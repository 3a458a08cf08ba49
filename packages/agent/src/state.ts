import { z } from 'zod';
import { ToolCall, type TaskRequest } from '@research/contracts';
import { buildSystemPrompt } from './prompt.js';

/** A tool call exactly as a model sent it in native format; validated later by the registry. */
export const NativeToolCall = z.object({
  id: z.string(),
  name: z.string(),
  /** JSON text, as the chat-completions protocol carries it. */
  arguments: z.string(),
});
export type NativeToolCall = z.infer<typeof NativeToolCall>;

/** One message of the conversation, provider-neutral. */
export const AgentMessage = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: z.string() }),
  z.object({ role: z.literal('user'), content: z.string() }),
  z.object({ role: z.literal('assistant'), content: z.string(), toolCalls: z.array(NativeToolCall).optional() }),
  z.object({ role: z.literal('tool'), toolCallId: z.string(), content: z.string() }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

export const ToolCallFormat = z.enum(['xml', 'native']);
export type ToolCallFormat = z.infer<typeof ToolCallFormat>;

export const TokenUsage = z.object({
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;

export const FinishReason = z.enum(['answer', 'max_steps', 'timeout', 'cancelled']);
export type FinishReason = z.infer<typeof FinishReason>;

/** A call parsed from the last assistant turn, with the global step index it will run as. */
export const PendingStep = z.object({ step: z.number().int().nonnegative(), call: ToolCall });
export type PendingStep = z.infer<typeof PendingStep>;

/**
 * Everything the loop needs to continue a task, as plain JSON. The worker checkpoints it after
 * every model turn (before the turn's calls are dispatched) and when the task finishes;
 * `runAgent({ state })` on another worker carries on from it: pending calls run without asking
 * the model again, and those that already finished answer from their step records.
 */
export const AgentState = z.object({
  version: z.literal(1),
  format: ToolCallFormat,
  messages: z.array(AgentMessage),
  /** Index the next parsed tool call gets. Step i is the i-th tool call of the task. */
  nextStep: z.number().int().nonnegative(),
  /** Model turns taken so far. */
  turns: z.number().int().nonnegative(),
  /** Calls from the last assistant turn not yet run, in order. */
  pending: z.array(PendingStep),
  usage: TokenUsage,
  finished: z.object({ reason: FinishReason, summary: z.string(), at: z.iso.datetime() }).optional(),
});
export type AgentState = z.infer<typeof AgentState>;

/**
 * The state of a task that has not started: system prompt and the user's prompt. `web` says the
 * web tools are offered (see `buildSystemPrompt`); default false.
 */
export function initialState(
  request: Pick<TaskRequest, 'prompt'>,
  opts: { format: ToolCallFormat; web?: boolean },
): AgentState {
  return {
    version: 1,
    format: opts.format,
    messages: [
      { role: 'system', content: buildSystemPrompt({ format: opts.format, web: opts.web === true }) },
      { role: 'user', content: request.prompt },
    ],
    nextStep: 0,
    turns: 0,
    pending: [],
    usage: { promptTokens: 0, completionTokens: 0 },
  };
}

/** Steps that have finished (their results are in the conversation). */
export function completedSteps(state: AgentState): number {
  return state.nextStep - state.pending.length;
}
