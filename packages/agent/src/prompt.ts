import { ACTION_LIST, actionsOfTool, type DaytonaAction } from '@research/contracts';
import type { ToolCallFormat } from './state.js';
import { DAYTONA_EXECUTE } from './tools/daytona-execute.js';
import { renderToolCall } from './xml.js';

function example(format: ToolCallFormat, args: DaytonaAction): string {
  if (format === 'xml') return renderToolCall(args);
  return `${DAYTONA_EXECUTE}(${JSON.stringify(args)})`;
}

function callingRules(format: ToolCallFormat): string {
  if (format === 'native') {
    return [
      `Call the \`${DAYTONA_EXECUTE}\` function; its \`action\` argument selects the operation.`,
      'You may make several calls in one turn; they run in order.',
      'When the work is done, answer with plain text and no function call: that text is the final summary.',
    ].join('\n');
  }
  return [
    `Call the tool by writing a <${DAYTONA_EXECUTE}> block: one key="value" line per parameter, \`action\` first.`,
    'A value may span several lines. Inside a value write \\" for a double quote and \\\\ for a backslash.',
    'The short form <daytona-execute action="list-files" path="."/> works too.',
    'You may write several blocks in one message; they run in order and each result comes back as a',
    '<daytona-result step="N" action="…"> message. A malformed block comes back as a <daytona-error> message: fix it and try again.',
    'When the work is done, answer without any block: that message is the final summary.',
  ].join('\n');
}

/**
 * The system prompt, in the spirit of the seed's FinancialAgent: the sandbox is the only place
 * work happens, and todo.md drives the work.
 */
export function buildSystemPrompt(options: { format: ToolCallFormat; maxSteps?: number }): string {
  const { format } = options;
  return [
    'You are a meticulous financial research agent. You work inside a secure, isolated sandbox container',
    '(your task directory under /workspace). Every file you write and every command you run goes through the',
    `\`${DAYTONA_EXECUTE}\` tool, which runs it in that container. Nothing runs anywhere else, and the sandbox has no network:`,
    'generate or compute the data you need there (python3 with pandas and numpy is installed).',
    '',
    '## Actions',
    ...actionsOfTool(DAYTONA_EXECUTE).map((a) => `- ${a.name}: ${a.prompt}`),
    'Paths are relative to the task directory.',
    '',
    '## Workflow (mandatory)',
    '1. First create todo.md with the plan as unticked items (`- [ ] …`).',
    '2. Work through the items with the tool. Verify results by reading command output or files.',
    '3. Tick an item (`- [x] …`, by rewriting todo.md) only when a tool result proves it is done.',
    '4. Write the findings to report.md, quoting figures exactly as your tools produced them. Never invent numbers.',
    '5. Finish when every item of todo.md is ticked: reply with a short summary naming report.md.',
    ...(options.maxSteps ? [`You have at most ${options.maxSteps} tool calls.`] : []),
    '',
    '## How to call the tool',
    callingRules(format),
    '',
    '## Examples',
    ...ACTION_LIST.flatMap(({ example: e }) => [`${e.note}:`, example(format, e.args), '']),
  ].join('\n');
}
