import { describe, expect, it } from 'vitest';
import type { TaskEvent } from '@research/contracts';
import { formatLog } from './logs.js';

const at = '2026-12-01T11:02:03.456Z';
const line = (event: TaskEvent) => formatLog({ id: '1-0', event });

describe('research logs lines', () => {
  it("puts a command's stdout and stderr under its result, bounded", () => {
    const text = line({
      type: 'tool_result',
      at,
      step: 2,
      action: 'execute-command',
      durationMs: 12.4,
      outcome: {
        ok: true,
        result: {
          action: 'execute-command',
          exitCode: 1,
          stdout: `${Array.from({ length: 45 }, (_, i) => `row ${i}`).join('\n')}\n`,
          stderr: 'Traceback: boom\n',
          timedOut: false,
          truncated: false,
          durationMs: 12,
        },
      },
    });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('11:02:03.456 tool_result       step 3 execute-command exit 1 (12 ms)');
    expect(lines[1]).toBe('             | row 0');
    expect(lines[40]).toBe('             | row 39');
    expect(lines[41]).toBe('             | … 5 more lines');
    expect(lines[42]).toBe('             ! Traceback: boom');
    expect(lines).toHaveLength(43);
  });

  it('shows live output, model deltas and webhook attempts on one line each', () => {
    expect(line({ type: 'tool_output', at, step: 0, stream: 'stdout', chunk: 'row 1\nrow 2\n' })).toBe(
      '11:02:03.456 tool_output       step 1 | row 1 row 2\n',
    );
    expect(line({ type: 'tool_output', at, step: 1, stream: 'stderr', chunk: 'oops', truncated: true })).toBe(
      '11:02:03.456 tool_output       step 2 ! oops (live output capped)\n',
    );
    expect(line({ type: 'model_delta', at, turn: 2, part: 'text', chunk: 'The mean' })).toBe(
      '11:02:03.456 model_delta       turn 2 text The mean\n',
    );
    expect(
      line({
        type: 'webhook',
        at,
        delivery: 't-completed',
        event: 'final',
        attempt: 2,
        statusCode: 503,
        error: { code: 'http_error', message: 'HTTP 503' },
        durationMs: 4.2,
        outcome: 'retrying',
      }),
    ).toBe('11:02:03.456 webhook           t-completed attempt 2 retrying HTTP 503 http_error (4 ms)\n');
  });

  it('names a refused step, a failure and the end on one line each', () => {
    expect(
      line({
        type: 'tool_result',
        at,
        step: 0,
        action: 'read-file',
        durationMs: 1,
        outcome: { ok: false, error: { code: 'path_outside_workspace', message: 'no\npath' } },
      }),
    ).toBe('11:02:03.456 tool_result       step 1 refused: no path (1 ms)\n');
    expect(
      line({ type: 'status', at, status: 'failed', error: { code: 'max_steps', message: 'used all 3 steps' } }),
    ).toBe('11:02:03.456 status            failed max_steps: used all 3 steps\n');
    expect(line({ type: 'finished', at, summary: 'All\ndone.', reason: 'answer' })).toBe(
      '11:02:03.456 finished          answer: All done.\n',
    );
  });
});
