import { DeltaThrottle } from './deltas.js';
import { type StepOutcome, type TaskEvent, type ToolCall, toolOf } from '@research/contracts';
import { silentLogger, type AgentLogger } from './logger.js';
import type { ModelProvider, ModelTurn } from './provider.js';
import { createDefaultRegistry, type ToolRegistry } from './registry.js';
import { DEFAULT_MAX_TOOL_OUTPUT_CHARS, parseErrorMessage, resultMessage } from './results.js';
import { completedSteps, type AgentState, type FinishReason, type TokenUsage, type ToolCallFormat } from './state.js';
import { parseToolCalls } from './xml.js';

/**
 * Runs one tool call: a sandbox action in the sandbox, a web action in the worker under the
 * egress policy. The worker makes each call a queued sub-job keyed by
 * `stepIndex`, so running the same index twice returns the first result. Throwing means the
 * infrastructure failed (not the action): the loop lets it propagate so the task job retries.
 */
export interface StepRunner {
  run(call: ToolCall, stepIndex: number, signal: AbortSignal): Promise<StepOutcome>;
}

export type AgentOutcome = {
  reason: FinishReason;
  summary: string;
  /** The final state (also passed to onCheckpoint). */
  state: AgentState;
  usage: TokenUsage;
};

export interface RunAgentOptions {
  /** Where to start: `initialState(...)` or a checkpoint. Not mutated. */
  state: AgentState;
  provider: ModelProvider;
  steps: StepRunner;
  /** Tool-call format; a checkpoint keeps the format it was started with. */
  format: ToolCallFormat;
  /** Tool calls the whole task may make. */
  maxSteps: number;
  /** Epoch ms after which the task stops with reason `timeout`. */
  deadline: number;
  /** Aborting cancels the task, the in-flight model request and the in-flight step. */
  signal: AbortSignal;
  onEvent?: (event: TaskEvent) => void | Promise<void>;
  /**
   * Called with a copy of the state after every model turn (before its calls run), after every
   * step unless `checkpointSteps` is false, and when the task finishes.
   */
  onCheckpoint?: (state: AgentState) => void | Promise<void>;
  /**
   * Checkpoint after each step too. Default: true. A caller whose step runner answers a step
   * index it already ran from that step's record (the worker's dispatcher does) can turn it
   * off: resuming from the turn's checkpoint then runs its calls again, and each finished one
   * answers from its record without running, so the state after a step need not be written.
   */
  checkpointSteps?: boolean;
  logger?: AgentLogger;
  /** Characters of one tool result kept in the conversation. Default: 12000. */
  maxToolOutputChars?: number;
  /** Model turns allowed (turns that only produce malformed blocks use no steps). Default: 2 × maxSteps + 4. */
  maxTurns?: number;
  /**
   * Tools the model may call. Default: daytona-execute plus the deprecated aliases
   * (`createDefaultRegistry({ web: true })` adds the web tools).
   */
  registry?: ToolRegistry;
  /** Model name for this task (TaskRequest.model); default: the provider's. */
  model?: string;
}

const now = (): string => new Date().toISOString();

/** JSON values from a native call, with `null`s dropped (strict-mode models send null for "absent"). */
function nativeParams(raw: string): { ok: true; params: Record<string, unknown> } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(raw.trim() === '' ? '{}' : raw);
  } catch {
    return { ok: false, error: `arguments are not valid JSON: ${raw.length > 200 ? `${raw.slice(0, 200)}…` : raw}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, error: 'arguments must be a JSON object' };
  return { ok: true, params: Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null)) };
}

/** Adds the assistant turn to the state; returns the problems to report as tool_error events. */
function applyTurn(state: AgentState, turn: ModelTurn, registry: ToolRegistry): string[] {
  const errors: string[] = [];
  if (state.format === 'xml') {
    state.messages.push({ role: 'assistant', content: turn.text });
    const parsed = parseToolCalls(turn.text, { registry });
    for (const { tool, args } of parsed.calls) {
      const step = state.nextStep++;
      state.pending.push({ step, call: { id: `call_${step}`, tool, args } });
    }
    if (parsed.errors.length > 0) state.messages.push(parseErrorMessage(parsed.errors));
    return parsed.errors;
  }
  const toolCalls = turn.toolCalls ?? [];
  const seen = new Set<string>();
  // Every native call needs an id its tool message can answer; fill in missing or repeated ones.
  const calls = toolCalls.map((c, i) => {
    const id = c.id && !seen.has(c.id) ? c.id : `call_${state.nextStep}_${i}`;
    seen.add(id);
    return { ...c, id };
  });
  state.messages.push({ role: 'assistant', content: turn.text, ...(calls.length > 0 ? { toolCalls: calls } : {}) });
  for (const c of calls) {
    const params = nativeParams(c.arguments);
    const resolved = params.ok
      ? registry.resolve(c.name, params.params)
      : { ok: false as const, error: `${c.name}: ${params.error}` };
    if (resolved.ok) {
      const step = state.nextStep++;
      state.pending.push({ step, call: { id: c.id, tool: toolOf(resolved.args), args: resolved.args } });
    } else {
      errors.push(resolved.error);
      state.messages.push({
        role: 'tool',
        toolCallId: c.id,
        content: `error (invalid_call): this call was not run: ${resolved.error}`,
      });
    }
  }
  return errors;
}

/**
 * The tool loop: model turn → tool calls → results in the conversation → next turn, until the
 * model answers without calling a tool, the step budget is spent, the deadline passes, or the
 * signal aborts. Errors of the model endpoint (LlmError) and of the StepRunner propagate.
 */
export async function runAgent(opts: RunAgentOptions): Promise<AgentOutcome> {
  const state: AgentState = structuredClone(opts.state);
  const logger = opts.logger ?? silentLogger;
  const registry = opts.registry ?? createDefaultRegistry({ logger });
  const maxChars = opts.maxToolOutputChars ?? DEFAULT_MAX_TOOL_OUTPUT_CHARS;
  const maxTurns = opts.maxTurns ?? opts.maxSteps * 2 + 4;
  const checkpointSteps = opts.checkpointSteps ?? true;
  if (opts.format !== state.format) {
    logger.warn(
      { stateFormat: state.format, format: opts.format },
      'the checkpoint was started in another tool-call format; keeping its format',
    );
  }

  const emit = async (event: TaskEvent): Promise<void> => {
    await opts.onEvent?.(event);
  };
  const checkpoint = async (): Promise<void> => {
    await opts.onCheckpoint?.(structuredClone(state));
  };
  const outcome = (): AgentOutcome => ({
    reason: state.finished?.reason ?? 'answer',
    summary: state.finished?.summary ?? '',
    state: structuredClone(state),
    usage: { ...state.usage },
  });
  if (state.finished) return outcome();

  // One internal signal for "stop now", whatever the cause; `stopCause` says which.
  const stop = new AbortController();
  let stopCause: 'cancelled' | 'timeout' | undefined;
  const halt = (cause: 'cancelled' | 'timeout'): void => {
    stopCause ??= cause;
    stop.abort(new Error(cause === 'cancelled' ? 'the task was cancelled' : 'the task ran out of time'));
  };
  const onAbort = (): void => halt('cancelled');
  if (opts.signal.aborted) halt('cancelled');
  else opts.signal.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const msLeft = opts.deadline - Date.now();
    // setTimeout fires at once above 2^31-1 ms, so a far deadline is reached in hops.
    if (msLeft <= 0) halt('timeout');
    else timer = setTimeout(arm, Math.min(msLeft, 2 ** 31 - 1));
  };
  arm();

  const finish = async (reason: FinishReason, summary: string): Promise<AgentOutcome> => {
    state.finished = { reason, summary, at: now() };
    logger.info({ reason, steps: completedSteps(state), turns: state.turns }, 'agent finished');
    await emit({ type: 'finished', at: now(), reason, summary });
    await checkpoint();
    return outcome();
  };
  const stopped = (): Promise<AgentOutcome> => {
    const steps = completedSteps(state);
    return stopCause === 'cancelled'
      ? finish('cancelled', `Cancelled after ${steps} step${steps === 1 ? '' : 's'}.`)
      : finish('timeout', `Stopped: the task's time limit was reached after ${steps} step${steps === 1 ? '' : 's'}.`);
  };

  try {
    for (;;) {
      if (stop.signal.aborted) return await stopped();

      const next = state.pending[0];
      if (next) {
        if (next.step >= opts.maxSteps) {
          return await finish('max_steps', `Stopped: the step budget of ${opts.maxSteps} tool calls is used up.`);
        }
        await emit({ type: 'tool_call', at: now(), step: next.step, call: next.call });
        const started = Date.now();
        let result: StepOutcome;
        try {
          result = await opts.steps.run(next.call, next.step, stop.signal);
        } catch (err) {
          if (stop.signal.aborted) return await stopped();
          throw err;
        }
        state.messages.push(resultMessage(state.format, next.step, next.call, result, maxChars));
        state.pending.shift();
        await emit({
          type: 'tool_result',
          at: now(),
          step: next.step,
          action: next.call.args.action,
          outcome: result,
          durationMs: Date.now() - started,
        });
        if (checkpointSteps) await checkpoint();
        continue;
      }

      if (completedSteps(state) >= opts.maxSteps) {
        return await finish('max_steps', `Stopped: the step budget of ${opts.maxSteps} tool calls is used up.`);
      }
      if (state.turns >= maxTurns) {
        return await finish(
          'max_steps',
          `Stopped: the model took ${state.turns} turns without finishing (limit ${maxTurns}).`,
        );
      }
      await emit({ type: 'turn', at: now(), turn: state.turns + 1 });
      let turn: ModelTurn;
      const deltas = new DeltaThrottle(state.turns + 1, emit);
      try {
        turn = await opts.provider.complete(
          {
            messages: state.messages,
            format: state.format,
            tools: registry.functionSpecs(),
            ...(opts.model ? { model: opts.model } : {}),
          },
          stop.signal,
          deltas.push,
        );
      } catch (err) {
        await deltas.close();
        if (stop.signal.aborted) return await stopped();
        throw err;
      }
      await deltas.close();
      state.turns += 1;
      state.usage.promptTokens += turn.usage?.promptTokens ?? 0;
      state.usage.completionTokens += turn.usage?.completionTokens ?? 0;
      const errors = applyTurn(state, turn, registry);
      if (turn.text.trim() !== '') await emit({ type: 'assistant_message', at: now(), text: turn.text });
      for (const message of errors) {
        logger.debug({ error: message }, 'malformed tool call returned to the model');
        await emit({ type: 'tool_error', at: now(), message });
      }
      if (state.pending.length === 0 && errors.length === 0) {
        return await finish('answer', turn.text.trim());
      }
      await checkpoint();
    }
  } finally {
    clearTimeout(timer);
    opts.signal.removeEventListener('abort', onAbort);
  }
}
