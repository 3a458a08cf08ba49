import { exitCodeOf, type StepOutcome } from '@research/contracts';

/**
 * The line a task job logs for each finished step (the dashboard shows the task's log; the
 * bench reads its durations back). Steps count from 1 for people, ids from 0: `index` is the
 * 0-based step index.
 */
export function stepLogLine(index: number, action: string, outcome: StepOutcome, durationMs: number): string {
  if (!outcome.ok) return `step ${index + 1} · ${action} · refused: ${outcome.error.code} · ${durationMs} ms`;
  const code = exitCodeOf(outcome.result);
  const timedOut = 'timedOut' in outcome.result && outcome.result.timedOut;
  const exit = code === undefined ? '' : ` · exit ${code}${timedOut ? ' (timed out)' : ''}`;
  return `step ${index + 1} · ${action}${exit} · ${durationMs} ms`;
}

const STEP_LOG_LINE = /^step (\d+) · .* · (\d+) ms$/;

/** The 0-based step index and duration of a {@link stepLogLine}, or undefined for any other line. */
export function parseStepLogLine(line: string): { index: number; durationMs: number } | undefined {
  const m = STEP_LOG_LINE.exec(line);
  if (!m) return undefined;
  return { index: Number(m[1]) - 1, durationMs: Number(m[2]) };
}
