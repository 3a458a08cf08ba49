import type { AgentMessage, NativeToolCall, TokenUsage, ToolCallFormat } from './state.js';
import type { FunctionToolSpec } from './registry.js';

export type ModelRequest = {
  messages: readonly AgentMessage[];
  format: ToolCallFormat;
  /** Advertised tools; providers send them only in native format. */
  tools: readonly FunctionToolSpec[];
  /** Overrides the provider's default model for this request (TaskRequest.model). */
  model?: string;
};

/** A piece of a streamed answer: its text, or the arguments of a native function call. */
export type ModelDelta = { part: 'text' | 'tool_call'; chunk: string };

export type ModelTurn = {
  /** Assistant text: the whole answer in xml format, prose (or the final answer) in native format. */
  text: string;
  /** Native-format function calls, unvalidated. */
  toolCalls?: NativeToolCall[];
  usage?: TokenUsage;
};

/** A chat model. Must honour `signal`, and throw LlmError when the endpoint gives up. */
export interface ModelProvider {
  readonly name: string;
  /** `onDelta` sees the answer's parts as they stream, when the provider streams (LLM_STREAM); others never call it. */
  complete(request: ModelRequest, signal: AbortSignal, onDelta?: (delta: ModelDelta) => void): Promise<ModelTurn>;
}
