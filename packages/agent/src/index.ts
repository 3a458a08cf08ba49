export { runAgent } from './loop.js';
export type { StepRunner, AgentOutcome, RunAgentOptions } from './loop.js';
export {
  AgentState,
  AgentMessage,
  NativeToolCall,
  PendingStep,
  TokenUsage,
  FinishReason,
  ToolCallFormat,
  initialState,
  completedSteps,
} from './state.js';
export type { ModelDelta, ModelProvider, ModelRequest, ModelTurn } from './provider.js';
export { ToolRegistry, createDefaultRegistry } from './registry.js';
export type { ToolResolution, FunctionToolSpec, DefaultRegistryOptions } from './registry.js';
export type { ToolDefinition, ToolArgsResult } from './tools/types.js';
export { daytonaExecuteTool, DAYTONA_EXECUTE } from './tools/daytona-execute.js';
export { webSearchTool, webFetchTool } from './tools/web.js';
export { catalogTool, toolParameters } from './tools/catalog-tool.js';
export { fileCreationTool, executeCommandTool } from './tools/legacy.js';
export { parseToolCalls, renderToolCall, renderToolBlock, scanToolBlocks } from './xml.js';
export type { ParseResult, ParsedToolCall, RawToolBlock } from './xml.js';
export { buildSystemPrompt } from './prompt.js';
export type { SystemPromptOptions } from './prompt.js';
export { truncateForContext, describeOutcome, DEFAULT_MAX_TOOL_OUTPUT_CHARS } from './results.js';
export { OfflineModel } from './providers/offline.js';
export { OpenAIProvider } from './providers/openai.js';
export type { OpenAIProviderOptions } from './providers/openai.js';
export { createProvider } from './providers/create.js';
export { AgentError, LlmError, AgentAbortError } from './errors.js';
export type { AgentLogger } from './logger.js';
