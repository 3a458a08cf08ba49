import type { AgentMessage } from '../state.js';

/**
 * Reading the offline model's own history back: the plans are functions of the conversation,
 * so a task resumed from a checkpoint makes the same moves.
 */

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

/** Python prints floats with a decimal point (54.0); quote them the way the output shows them. */
export function py(n: number): string {
  return Number.isInteger(n) ? n.toFixed(1) : String(n);
}
