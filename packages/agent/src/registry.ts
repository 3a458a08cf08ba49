import type { DaytonaAction } from '@research/contracts';
import { silentLogger, type AgentLogger } from './logger.js';
import { daytonaExecuteTool } from './tools/daytona-execute.js';
import { executeCommandTool, fileCreationTool } from './tools/legacy.js';
import type { ToolDefinition } from './tools/types.js';
import { webFetchTool, webSearchTool } from './tools/web.js';

export type ToolResolution =
  | { ok: true; args: DaytonaAction /** Set when a deprecated alias was called. */; deprecatedTool?: string }
  | { ok: false; error: string };

/** An OpenAI-style function tool, as sent in `tools` of a chat-completions request. */
export type FunctionToolSpec = {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
};

/** The tools a model may call, by name; deprecated ones resolve but are never advertised. */
export class ToolRegistry {
  readonly #tools = new Map<string, ToolDefinition>();
  readonly #logger: AgentLogger;

  constructor(tools: readonly ToolDefinition[] = [], options: { logger?: AgentLogger } = {}) {
    this.#logger = options.logger ?? silentLogger;
    for (const tool of tools) this.register(tool);
  }

  register(tool: ToolDefinition): this {
    if (this.#tools.has(tool.name)) throw new Error(`tool "${tool.name}" is already registered`);
    this.#tools.set(tool.name, tool);
    return this;
  }

  get(name: string): ToolDefinition | undefined {
    return this.#tools.get(name);
  }

  /** Every registered name, deprecated ones included: the XML parser recognises all of them. */
  names(): string[] {
    return [...this.#tools.keys()];
  }

  /** Tools shown to the model in the system prompt and in native `tools`. */
  advertised(): ToolDefinition[] {
    return [...this.#tools.values()].filter((t) => !t.deprecated);
  }

  functionSpecs(): FunctionToolSpec[] {
    return this.advertised().map((t) => ({
      type: 'function',
      function: { name: t.name, description: t.description, parameters: t.parameters },
    }));
  }

  /** Validates a call into an action of the catalog; a deprecated alias is translated and logged. */
  resolve(name: string, params: Record<string, unknown>): ToolResolution {
    const tool = this.#tools.get(name);
    if (!tool) {
      const known = this.advertised()
        .map((t) => t.name)
        .join(', ');
      return { ok: false, error: `unknown tool "${name}"; available: ${known}` };
    }
    const result = tool.toAction(params);
    if (!result.ok)
      return { ok: false, error: result.error.startsWith(`${name}:`) ? result.error : `${name}: ${result.error}` };
    if (tool.deprecated) {
      this.#logger.warn(
        { tool: name, replacement: tool.deprecated.replacement, action: result.action.action },
        `deprecated tool "${name}" was called; translated into ${tool.deprecated.replacement} ${result.action.action}`,
      );
      return { ok: true, args: result.action, deprecatedTool: name };
    }
    return { ok: true, args: result.action };
  }
}

export interface DefaultRegistryOptions {
  logger?: AgentLogger;
  /**
   * Registers and advertises `web-search` and `web-fetch`. Set it only when the worker runs web
   * steps (a search provider is configured); without it a web block is an unknown tool. Default: false.
   */
  web?: boolean;
}

/**
 * daytona-execute, plus the seed's `file-creation` and `execute-command` as deprecated aliases,
 * plus the web tools when `web` is set.
 */
export function createDefaultRegistry(options: DefaultRegistryOptions = {}): ToolRegistry {
  const web = options.web ? [webSearchTool, webFetchTool] : [];
  return new ToolRegistry([daytonaExecuteTool, ...web, fileCreationTool, executeCommandTool], options);
}
