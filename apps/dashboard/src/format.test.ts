import { describe, expect, it } from 'vitest';
import { MAX_STRING_BYTES, REDACTED, formatForBoard, formatProgress, truncate } from './format.js';

describe('formatForBoard', () => {
  it('redacts metadata keys that look like secrets and keeps the rest', () => {
    const data = {
      taskId: 't1',
      request: {
        prompt: 'Research current market conditions',
        metadata: {
          apiKey: 'sk-live-1',
          githubToken: 'ghp_x',
          clientSecret: 's',
          PASSWORD: 'p',
          Authorization: 'Bearer x',
          team: 'research',
          priority: 3,
        },
      },
      createdAt: '2025-01-01T00:00:00.000Z',
    };
    const shown = formatForBoard(data) as typeof data;
    expect(shown.request.metadata).toEqual({
      apiKey: REDACTED,
      githubToken: REDACTED,
      clientSecret: REDACTED,
      PASSWORD: REDACTED,
      Authorization: REDACTED,
      team: 'research',
      priority: 3,
    });
    expect(shown.request.prompt).toBe('Research current market conditions');
    expect(shown.taskId).toBe('t1');
    // The job's own data is left untouched.
    expect(data.request.metadata.apiKey).toBe('sk-live-1');
  });

  it('masks bearer tokens and sk- keys inside strings', () => {
    const shown = formatForBoard({
      command: 'curl -H "Authorization: Bearer abcdefghijklmnop" https://x -d key=sk-abcdefghijklmnopqrstuv',
    }) as { command: string };
    expect(shown.command).toBe(`curl -H "Authorization: Bearer ${REDACTED}" https://x -d key=${REDACTED}`);
  });

  it('truncates long stdout, stderr and content with a note, and leaves short strings alone', () => {
    const stdout = 'x'.repeat(10_000);
    const value = {
      ok: true,
      result: {
        action: 'execute-command',
        exitCode: 0,
        stdout,
        stderr: 'warning: short',
        timedOut: false,
        truncated: false,
        durationMs: 41,
      },
    };
    const shown = formatForBoard(value) as { result: { stdout: string; stderr: string; exitCode: number } };
    expect(shown.result.stdout.startsWith('x'.repeat(MAX_STRING_BYTES))).toBe(true);
    expect(shown.result.stdout).toContain('[truncated: 7,952 more bytes of 10,000 not shown]');
    expect(shown.result.stdout.length).toBeLessThan(MAX_STRING_BYTES + 100);
    expect(shown.result.stderr).toBe('warning: short');
    expect(shown.result.exitCode).toBe(0);

    const file = formatForBoard({
      action: { action: 'create-file', filePath: 'report.md', content: '# Report\n'.repeat(1_000) },
    }) as {
      action: { content: string; filePath: string };
    };
    expect(file.action.content).toContain('[truncated:');
    expect(file.action.filePath).toBe('report.md');
  });

  it('never cuts inside a multi-byte character', () => {
    const cut = truncate('é'.repeat(2_000), 101);
    const kept = cut.split('\n')[0] ?? '';
    expect(kept).toBe('é'.repeat(50));
    expect(cut).not.toContain('\uFFFD');
  });

  it('passes through non-objects and arrays', () => {
    expect(formatForBoard(null)).toBeNull();
    expect(formatForBoard(7)).toBe(7);
    expect(formatForBoard([{ token: 'a' }, 'b'])).toEqual([{ token: REDACTED }, 'b']);
  });
});

describe('formatProgress', () => {
  it('adds a percentage the board draws, 100 when done', () => {
    expect(formatProgress({ step: 3, maxSteps: 12, phase: 'running-step' })).toMatchObject({
      progress: 25,
      step: 3,
      maxSteps: 12,
      phase: 'running-step',
      summary: 'step 3 of 12 · running-step',
    });
    expect(formatProgress({ step: 6, maxSteps: 40, phase: 'done' })).toMatchObject({ progress: 100 });
    expect(formatProgress(42)).toBe(42);
  });
});
