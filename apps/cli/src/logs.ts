import { exitCodeOf, type TaskEvent } from '@research/contracts';
import type { ResearchClient, StreamedEvent } from '@research/client';
import { describeCall, oneLine, truncate } from './render.js';

/**
 * Without `--follow`, how long the stream may stay quiet before the replay of past events is
 * taken as done. The API sends no "caught up" marker: its replay is written in one burst, then
 * it waits for live events, so a short silence is where the past ends. A task that keeps
 * emitting events (a step streaming output) is cut at {@link SNAPSHOT_MAX_MS} instead.
 */
const SNAPSHOT_IDLE_MS = 500;
const SNAPSHOT_MAX_MS = 10_000;
/** Lines of a command's stdout or stderr printed under its result. */
const OUTPUT_LINES = 40;

export interface LogsOptions {
  out: { write(chunk: string): unknown };
  /** Keep printing live events until the task is final. Default: false (the events so far). */
  follow?: boolean;
  /** One JSON object per line (`{id, event}`) instead of text. */
  json?: boolean;
  signal?: AbortSignal;
}

/** Prints a task's events; returns how many it printed. */
export async function printLogs(client: ResearchClient, id: string, options: LogsOptions): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  options.signal?.addEventListener('abort', stop, { once: true });
  let idle: NodeJS.Timeout | undefined;
  let cap: NodeJS.Timeout | undefined;
  const arm = () => {
    if (options.follow) return;
    clearTimeout(idle);
    idle = setTimeout(stop, SNAPSHOT_IDLE_MS);
    cap ??= setTimeout(stop, SNAPSHOT_MAX_MS);
  };
  let printed = 0;
  try {
    for await (const streamed of client.events(id, { signal: controller.signal, onOpen: arm })) {
      options.out.write(options.json ? `${JSON.stringify(streamed)}\n` : formatLog(streamed));
      printed++;
      arm();
    }
  } finally {
    clearTimeout(idle);
    clearTimeout(cap);
    options.signal?.removeEventListener('abort', stop);
  }
  return printed;
}

/** `11:02:03.456 tool_call   step 1 execute-command python3 analysis.py`, and a command's output under its result. */
export function formatLog({ event }: StreamedEvent): string {
  const time = event.at.slice(11, 23);
  const lines = [`${time} ${event.type.padEnd(17)} ${logText(event)}`.trimEnd()];
  if (event.type === 'tool_result' && event.outcome.ok) {
    const result = event.outcome.result;
    if ('stdout' in result) lines.push(...indented(result.stdout, '| '));
    if ('stderr' in result) lines.push(...indented(result.stderr, '! '));
  }
  return `${lines.join('\n')}\n`;
}

function logText(event: TaskEvent): string {
  switch (event.type) {
    case 'status': {
      const parts: string[] = [event.status];
      if (event.workerId) parts.push(`on ${event.workerId}`);
      if (event.error) parts.push(`${event.error.code}: ${truncate(oneLine(event.error.message), 160)}`);
      if (event.status === 'completed' && event.result) parts.push(`${event.result.files.length} files`);
      return parts.join(' ');
    }
    case 'progress':
      return `step ${event.progress.step}/${event.progress.maxSteps} ${event.progress.phase}`;
    case 'turn':
      return `turn ${event.turn}`;
    case 'assistant_message':
      return truncate(oneLine(event.text), 200);
    case 'tool_call':
      return `step ${event.step + 1} ${describeCall(event.call)}`;
    case 'tool_result': {
      const took = `${Math.round(event.durationMs)} ms`;
      if (!event.outcome.ok)
        return `step ${event.step + 1} refused: ${truncate(oneLine(event.outcome.error.message), 160)} (${took})`;
      const code = exitCodeOf(event.outcome.result);
      return `step ${event.step + 1} ${event.action} ${code !== undefined ? `exit ${code}` : 'ok'} (${took})`;
    }
    case 'tool_error':
      return truncate(oneLine(event.message), 200);
    case 'tool_output':
      return `step ${event.step + 1} ${event.stream === 'stderr' ? '!' : '|'} ${truncate(oneLine(event.chunk), 200)}${event.truncated ? ' (live output capped)' : ''}`;
    case 'model_delta':
      return `turn ${event.turn} ${event.part} ${truncate(oneLine(event.chunk), 200)}`;
    case 'webhook': {
      const answer = event.statusCode !== undefined ? ` HTTP ${event.statusCode}` : '';
      const why = event.error ? ` ${event.error.code}` : '';
      return `${event.delivery} attempt ${event.attempt} ${event.outcome}${answer}${why} (${Math.round(event.durationMs)} ms)`;
    }
    case 'finished':
      return `${event.reason}: ${truncate(oneLine(event.summary), 200)}`;
    default:
      return truncate(JSON.stringify(event), 200);
  }
}

function indented(text: string, mark: string): string[] {
  const lines = text.replace(/\n$/, '').split('\n');
  if (text === '') return [];
  const shown = lines.slice(0, OUTPUT_LINES).map((l) => `             ${mark}${l}`);
  if (lines.length > OUTPUT_LINES) shown.push(`             ${mark}… ${lines.length - OUTPUT_LINES} more lines`);
  return shown;
}
