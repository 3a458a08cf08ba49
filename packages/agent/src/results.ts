import { describeActionResult, type StepOutcome, type ToolCall } from '@research/contracts';
import type { AgentMessage, ToolCallFormat } from './state.js';

/** Default room a single tool result gets in the conversation. */
export const DEFAULT_MAX_TOOL_OUTPUT_CHARS = 12_000;

/** The text a model sees for a step's outcome, before truncation. */
export function describeOutcome(outcome: StepOutcome): string {
  return outcome.ok ? describeActionResult(outcome.result) : `error (${outcome.error.code}): ${outcome.error.message}`;
}

/**
 * Keeps the head and the tail of a long text (errors tend to be at the end of output) and says
 * plainly that the middle is missing, so the model does not mistake it for the whole output.
 */
export function truncateForContext(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const head = Math.ceil(maxChars * 0.7);
  const tail = Math.max(0, maxChars - head);
  const omitted = text.length - head - tail;
  return `${text.slice(0, head)}\n[… ${omitted} characters omitted here: output truncated for the context (${text.length} characters in total) …]\n${tail > 0 ? text.slice(-tail) : ''}`;
}

/** Appends a step's outcome to the conversation in the task's format. */
export function resultMessage(
  format: ToolCallFormat,
  step: number,
  call: ToolCall,
  outcome: StepOutcome,
  maxChars: number,
): AgentMessage {
  const body = truncateForContext(describeOutcome(outcome), maxChars);
  if (format === 'native')
    return { role: 'tool', toolCallId: call.id, content: `step ${step} (${call.args.action}): ${body}` };
  const status = outcome.ok ? '' : ' status="error"';
  return {
    role: 'user',
    content: `<daytona-result step="${step}" action="${call.args.action}"${status}>\n${body}\n</daytona-result>`,
  };
}

/** Malformed tool blocks of one xml turn, as one message back to the model. */
export function parseErrorMessage(errors: readonly string[]): AgentMessage {
  return {
    role: 'user',
    content: `<daytona-error>\nThese tool blocks were not run:\n${errors.map((e) => `- ${e}`).join('\n')}\nFix them and send them again.\n</daytona-error>`,
  };
}
