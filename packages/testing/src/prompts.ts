import { renderToolBlock, renderToolCall } from '@research/agent';
import type { DaytonaAction } from '@research/contracts';

/**
 * One `<daytona-execute>` block, written by the agent's own `renderToolCall`, so a test prompt
 * is always what the parser reads. `params` may also be what the parser must refuse (an unknown
 * action, a missing or unknown parameter): the writer puts down any `key="value"` lines, so they
 * are not checked here.
 */
export function block(params: Record<string, string | number>): string {
  return renderToolBlock('daytona-execute', params);
}

/** A prompt the offline model replays: one `<daytona-execute>` block per command, in order. */
export function replayPrompt(commands: string[]): string {
  return commands.map((command) => renderToolCall({ action: 'execute-command', command })).join('\n');
}

/** A prompt the offline model replays: one block per call (any tool of the catalog), in order. */
export function callsPrompt(calls: DaytonaAction[]): string {
  return calls.map((call) => renderToolCall(call)).join('\n');
}
