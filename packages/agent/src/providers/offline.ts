import { type DaytonaAction, TOOLS } from '@research/contracts';
import type { ModelProvider, ModelRequest, ModelTurn } from '../provider.js';
import type { AgentMessage } from '../state.js';
import { toolParameters } from '../tools/catalog-tool.js';
import { renderToolCall, scanToolBlocks } from '../xml.js';
import { planMove } from './offline-plan.js';
import { webPlanMove } from './offline-web-plan.js';

/** Nothing is sent anywhere, so nothing is counted. */
const NO_TOKENS = { promptTokens: 0, completionTokens: 0 } as const;

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/** The task's prompt: the first user message. */
function taskPrompt(messages: readonly AgentMessage[]): string {
  return messages.find((m) => m.role === 'user')?.content ?? '';
}

/**
 * The deterministic model used when no LLM endpoint is configured (LLM_PROVIDER=offline).
 * If the prompt holds tool blocks (`<daytona-execute>`, `<web-search>`, `<web-fetch>`) it issues
 * exactly those, one per turn, in order, then sums up; otherwise it runs the built-in research
 * plan — the web one when the web tools are offered to it. Its next move is derived from the
 * request alone (history and tools), so a task resumed from a checkpoint continues correctly.
 */
export class OfflineModel implements ModelProvider {
  readonly name = 'offline';

  async complete(request: ModelRequest, signal: AbortSignal): Promise<ModelTurn> {
    if (signal.aborted) throw abortError(signal);
    const prompt = taskPrompt(request.messages);
    const turn = request.messages.filter((m) => m.role === 'assistant').length;
    const blocks = scanToolBlocks(prompt, TOOLS);
    if (blocks.length > 0) {
      const block = blocks[turn];
      if (!block) return { text: replaySummary(blocks, request.messages), usage: NO_TOKENS };
      const say = `Running block ${turn + 1} of ${blocks.length} from the prompt.`;
      const raw = prompt.slice(block.start, block.end);
      if (request.format === 'xml') return { text: `${say}\n\n${raw}`, usage: NO_TOKENS };
      // A block that does not even scan is passed on as written so the loop reports it to the "model".
      const args = block.error ? raw : JSON.stringify(block.params);
      return {
        text: say,
        toolCalls: [{ id: `offline_${turn}`, name: block.tool, arguments: args }],
        usage: NO_TOKENS,
      };
    }
    // Like a real model, it knows the web tools only when they are offered to it.
    const web = request.tools.some((t) => t.function.name === 'web-search');
    const move = web ? webPlanMove(prompt, request.messages) : planMove(prompt, request.messages);
    if (move.kind === 'answer') return { text: move.text, usage: NO_TOKENS };
    return this.#call(request, turn, move.say, move.args);
  }

  #call(request: ModelRequest, turn: number, say: string, args: DaytonaAction): ModelTurn {
    if (request.format === 'xml') return { text: `${say}\n\n${renderToolCall(args)}`, usage: NO_TOKENS };
    const { tool, params } = toolParameters(args);
    return {
      text: say,
      toolCalls: [{ id: `offline_${turn}`, name: tool, arguments: JSON.stringify(params) }],
      usage: NO_TOKENS,
    };
  }
}

function replaySummary(blocks: readonly { tool: string }[], messages: readonly AgentMessage[]): string {
  const count = blocks.length;
  const results = messages.filter((m) => m.role === 'tool' || (m.role === 'user' && m.content.startsWith('<daytona-')));
  // The first line says how a step went; what follows may be web text that says anything.
  const failed = results.filter((m) =>
    /status="error"|^<daytona-error>|^error \(|: error \(/.test(m.content.split('\n', 1)[0] ?? ''),
  ).length;
  const plural = count === 1 ? '' : 's';
  const tools = [...new Set(blocks.map((b) => b.tool))];
  const kinds = tools.length === 1 ? `${tools[0]} block${plural}` : `tool block${plural} (${tools.join(', ')})`;
  return failed === 0
    ? `Done: ran the ${count} ${kinds} from the prompt, one per turn; every one succeeded.`
    : `Done: went through the ${count} ${kinds} from the prompt, one per turn; ${failed} of them failed or were rejected (see the step results).`;
}
