import { describe, expect, it } from 'vitest';
import type { StepOutcome } from '@research/contracts';
import { parseStepLogLine, stepLogLine } from './step-log.js';

const command = (exitCode: number, timedOut = false): StepOutcome => ({
  ok: true,
  result: { action: 'execute-command', exitCode, stdout: '', stderr: '', timedOut, truncated: false, durationMs: 5 },
});

describe('stepLogLine', () => {
  it('counts steps from 1 and shows a command’s exit code, and whether it timed out', () => {
    expect(stepLogLine(0, 'execute-command', command(0), 12)).toBe('step 1 · execute-command · exit 0 · 12 ms');
    expect(stepLogLine(2, 'execute-command', command(137, true), 30_000)).toBe(
      'step 3 · execute-command · exit 137 (timed out) · 30000 ms',
    );
    const listed: StepOutcome = { ok: true, result: { action: 'list-files', path: '.', files: [], truncated: false } };
    expect(stepLogLine(4, 'list-files', listed, 3)).toBe('step 5 · list-files · 3 ms');
  });

  it('names the code of a refused step', () => {
    const refused: StepOutcome = { ok: false, error: { code: 'path_outside_workspace', message: 'no' } };
    expect(stepLogLine(1, 'read-file', refused, 1)).toBe('step 2 · read-file · refused: path_outside_workspace · 1 ms');
  });

  it('is read back by parseStepLogLine, index and duration', () => {
    expect(parseStepLogLine(stepLogLine(6, 'execute-command', command(1, true), 250))).toEqual({
      index: 6,
      durationMs: 250,
    });
    expect(parseStepLogLine('resuming from checkpoint')).toBeUndefined();
  });
});
