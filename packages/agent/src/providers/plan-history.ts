import type { DaytonaAction } from '@research/contracts';
import type { z } from 'zod';
import type { AgentMessage } from '../state.js';

/**
 * What the offline model's plans share: reading their own history back (the plans are functions
 * of the conversation, so a task resumed from a checkpoint makes the same moves), and the moves
 * every plan opens and closes with.
 */

/** One move of the offline model: a call with a line of prose, or the final answer. */
export type PlanMove = { kind: 'call'; say: string; args: DaytonaAction } | { kind: 'answer'; text: string };

/** A tool call, with the line of prose said before it. */
export function callMove(say: string, args: DaytonaAction): PlanMove {
  return { kind: 'call', say, args };
}

/** A call writing `content` to `filePath`. */
export function writeMove(say: string, filePath: string, content: string): PlanMove {
  return callMove(say, { action: 'create-file', filePath, content });
}

/** A call running an analysis script, given the two minutes one may take. */
export function analysisMove(say: string, command: string): PlanMove {
  return callMove(say, { action: 'execute-command', command, timeoutMs: 120_000 });
}

/** A plan's todo.md: its items, ticked where `ticked` says. */
export function todoList(items: readonly string[], ticked: readonly boolean[]): string {
  return `# Research plan\n\n${items.map((item, i) => `- [${ticked[i] ? 'x' : ' '}] ${item}`).join('\n')}\n`;
}

/** The first move of every plan: writing its todo.md. */
export function writePlan(todo: string): PlanMove {
  return writeMove('First I write the plan to todo.md.', 'todo.md', todo);
}

/** Once the report is written: todo.md again, ticked where the results prove the work done. */
export function tickPlan(todo: string): PlanMove {
  return writeMove('Ticking off todo.md where the results prove the work is done.', 'todo.md', todo);
}

/** The last call of every plan. */
export function listFiles(): PlanMove {
  return callMove('Listing the files of the task.', { action: 'list-files', path: '.' });
}

/** The tool results that answered the n-th assistant turn (0-based), one string per result. */
export function resultsOfTurn(messages: readonly AgentMessage[], n: number): string[] {
  let seen = -1;
  const out: string[] = [];
  for (const m of messages) {
    if (m.role === 'assistant') {
      seen += 1;
      if (seen > n) break;
      continue;
    }
    if (seen === n && (m.role === 'tool' || m.role === 'user')) out.push(m.content);
  }
  return out;
}

export type StepReading =
  | { ok: true; body: string }
  | { ok: false; code: string; message: string }
  /** No result: the turn was not answered by a step (or not yet). */
  | undefined;

const XML_RESULT = /^<daytona-result step="\d+" action="[\w-]+"( status="error")?>\n([\s\S]*?)\n<\/daytona-result>$/;
const NATIVE_RESULT = /^step \d+ \([\w-]+\): ([\s\S]*)$/;
const ERROR = /^error \(([\w-]+)\): ([^\n]*)/;

/**
 * The outcome of the step that answered turn `n`, as the loop wrote it (xml or native). Only
 * the frame is read as structure; the body is what the tool returned.
 */
export function stepOfTurn(messages: readonly AgentMessage[], n: number): StepReading {
  const [text] = resultsOfTurn(messages, n);
  if (text === undefined) return undefined;
  const xml = XML_RESULT.exec(text);
  const body = xml ? (xml[2] ?? '') : (NATIVE_RESULT.exec(text)?.[1] ?? text);
  const failed = xml ? xml[1] !== undefined : ERROR.test(body);
  if (!failed) return { ok: true, body };
  const error = ERROR.exec(body);
  return { ok: false, code: error?.[1] ?? 'error', message: error?.[2] ?? body.split('\n', 1)[0] ?? '' };
}

/**
 * The JSON object in `text` (a file's content, or a command's output with lines around it) if
 * it fits `schema`.
 */
export function jsonIn<T>(text: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (!text) return undefined;
  const first = text.indexOf('{');
  const last = text.lastIndexOf('}');
  if (first < 0 || last <= first) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text.slice(first, last + 1)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Python prints floats with a decimal point (54.0); quote them the way the output shows them. */
export function py(n: number): string {
  return Number.isInteger(n) ? n.toFixed(1) : String(n);
}
