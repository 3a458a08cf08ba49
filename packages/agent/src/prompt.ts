import type { DaytonaAction } from '@research/contracts';
import type { ToolCallFormat } from './state.js';
import { DAYTONA_EXECUTE } from './tools/daytona-execute.js';
import { renderToolCall } from './xml.js';

const EXAMPLES: { note: string; args: DaytonaAction }[] = [
  {
    note: 'Create todo.md first',
    args: {
      action: 'create-file',
      filePath: 'todo.md',
      content: '# Financial Analysis Project\n- [ ] Gather market data\n- [ ] Run calculations\n- [ ] Write report.md',
    },
  },
  {
    note: 'Run Python in the container',
    args: { action: 'execute-command', command: "python3 -c 'import pandas as pd; print(pd.__version__)'" },
  },
  { note: 'Read results back', args: { action: 'read-file', filePath: 'analysis_results.json' } },
  { note: 'See what the task directory holds', args: { action: 'list-files', path: '.' } },
];

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
    '- create-file: filePath, content — writes the whole file (overwrites).',
    '- execute-command: command, optional timeoutMs, cwd — runs a bash command; you get exit code, stdout and stderr.',
    '- read-file: filePath — returns the file content.',
    '- list-files: optional path — lists files below the task directory.',
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
    ...EXAMPLES.flatMap((e) => [`${e.note}:`, example(format, e.args), '']),
  ].join('\n');
}
