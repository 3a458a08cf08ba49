import { describe, expect, it } from 'vitest';
import type { TaskEvent, TaskView } from '@research/contracts';
import { barRenderer, plainRenderer } from './follow.js';
import {
  applyEvent,
  barText,
  describeCall,
  eventLine,
  finalReport,
  initialState,
  pickReport,
  statusReport,
  type FollowState,
} from './render.js';

const at = '2026-01-01T00:00:00.000Z';
const cmd = (step: number, command: string): TaskEvent => ({
  type: 'tool_call',
  at,
  step,
  call: { id: `call_${step}`, tool: 'daytona-execute', args: { action: 'execute-command', command } },
});
const ran = (step: number, exitCode: number, durationMs: number): TaskEvent => ({
  type: 'tool_result',
  at,
  step,
  action: 'execute-command',
  durationMs,
  outcome: {
    ok: true,
    result: {
      action: 'execute-command',
      exitCode,
      stdout: '',
      stderr: '',
      timedOut: false,
      truncated: false,
      durationMs,
    },
  },
});

/** A research task's stream as a worker writes it. */
const EVENTS: TaskEvent[] = [
  { type: 'status', at, status: 'queued' },
  { type: 'status', at, status: 'running', workerId: 'w1' },
  { type: 'turn', at, turn: 1 },
  { type: 'assistant_message', at, text: 'Writing the plan.' },
  {
    type: 'tool_call',
    at,
    step: 0,
    call: {
      id: 'call_0',
      tool: 'daytona-execute',
      args: { action: 'create-file', filePath: 'todo.md', content: '- [ ] x' },
    },
  },
  {
    type: 'tool_result',
    at,
    step: 0,
    action: 'create-file',
    durationMs: 12,
    outcome: { ok: true, result: { action: 'create-file', path: 'todo.md', bytes: 7, overwritten: false } },
  },
  { type: 'turn', at, turn: 2 },
  cmd(1, 'python3 analysis.py'),
  ran(1, 0, 840.4),
  { type: 'tool_error', at, message: 'malformed block:\nmissing action' },
  {
    type: 'tool_call',
    at,
    step: 2,
    call: { id: 'call_2', tool: 'daytona-execute', args: { action: 'read-file', filePath: '../etc/passwd' } },
  },
  {
    type: 'tool_result',
    at,
    step: 2,
    action: 'read-file',
    durationMs: 3,
    outcome: { ok: false, error: { code: 'path_outside_workspace', message: 'path is outside the task workspace' } },
  },
  { type: 'finished', at, summary: 'Market looks fine.', reason: 'answer' },
  {
    type: 'status',
    at,
    status: 'completed',
    result: { summary: 'Market looks fine.', files: [{ path: 'report.md', size: 2048 }] },
  },
];

function fold(events: TaskEvent[], start: FollowState): FollowState[] {
  const states: FollowState[] = [];
  let s = start;
  for (const e of events) {
    s = applyEvent(s, e);
    states.push(s);
  }
  return states;
}

describe('progress from a sequence of events', () => {
  const start = initialState({ status: 'queued', progress: { step: 0, maxSteps: 8, phase: 'queued' } });
  /** The plain lines of the first two steps of {@link EVENTS} (its first nine events): `eventLine` and the plain renderer print them alike. */
  const FIRST_TWO_STEPS = [
    'queued',
    'running on w1',
    'step 1/8 create-file todo.md',
    '  ok (12 ms)',
    'step 2/8 execute-command python3 analysis.py',
    '  exit 0 (840 ms)',
  ];

  it('tracks step N/maxSteps, phase and the current action', () => {
    const states = fold(EVENTS, start);
    expect(states.map((s) => `${s.step}/${s.maxSteps} ${s.phase}`)).toEqual([
      '0/8 queued',
      '0/8 starting',
      '0/8 thinking',
      '0/8 thinking',
      '1/8 running-step',
      '1/8 thinking',
      '1/8 thinking',
      '2/8 running-step',
      '2/8 thinking',
      '2/8 thinking',
      '3/8 running-step',
      '3/8 thinking',
      '3/8 finishing',
      '3/8 done',
    ]);
    expect(states[7]!.action).toBe('execute-command python3 analysis.py');
    expect(barText(states[7]!)).toBe('running-step · execute-command python3 analysis.py');
    const last = states.at(-1)!;
    expect(last).toMatchObject({ status: 'completed', workerId: 'w1', summary: 'Market looks fine.' });
    expect(barText(last)).toBe('completed');
    expect(last.result?.files).toEqual([{ path: 'report.md', size: 2048 }]);
  });

  it('takes maxSteps and step from progress events, and grows maxSteps rather than overflow', () => {
    const s = applyEvent(start, { type: 'progress', at, progress: { step: 4, maxSteps: 40, phase: 'running-step' } });
    expect(s).toMatchObject({ step: 4, maxSteps: 40, phase: 'running-step' });
    expect(applyEvent(initialState(), cmd(4, 'ls')).maxSteps).toBe(5);
  });

  it('prints plain lines for what a log reader wants', () => {
    const lines: string[] = [];
    let s = start;
    for (const e of EVENTS) {
      s = applyEvent(s, e);
      const line = eventLine(s, e);
      if (line !== undefined) lines.push(line);
    }
    expect(lines).toEqual([
      ...FIRST_TWO_STEPS,
      '  tool error: malformed block: missing action',
      'step 3/8 read-file ../etc/passwd',
      '  refused: path is outside the task workspace (3 ms)',
      'finished (answer)',
    ]);
  });

  it('plain renderer writes one line per meaningful event and says when it reconnects', () => {
    let out = '';
    const r = plainRenderer({ write: (s: string) => (out += s), isTTY: false });
    let s = start;
    r.start(s);
    for (const e of EVENTS.slice(0, 9)) {
      s = applyEvent(s, e);
      r.update(s, e);
    }
    r.reconnecting({ attempt: 1, reason: 'the stream ended before the task finished' });
    r.stop();
    expect(out.split('\n')).toEqual([
      'following task (up to 8 steps)',
      ...FIRST_TWO_STEPS,
      'connection lost (the stream ended before the task finished); reconnecting (attempt 1)…',
      '',
    ]);
    expect(out).not.toContain('\x1b');
  });

  it('bar renderer draws step N/maxSteps and the action on a terminal', () => {
    let out = '';
    const tty = {
      write: (s: string) => {
        out += s;
        return true;
      },
      isTTY: true,
      columns: 160,
      on: () => tty,
      removeListener: () => tty,
    };
    const r = barRenderer(tty);
    let s = start;
    r.start(s);
    for (const e of EVENTS.slice(0, 8)) {
      s = applyEvent(s, e);
      r.update(s, e);
    }
    r.stop();
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what this strips
    const text = out.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
    expect(text).toContain('2/8 steps | running-step · execute-command python3 analysis.py');
    expect(text).toMatch(/█+░+ 2\/8 steps/);
  });
});

describe('describeCall', () => {
  it('keeps one bounded line', () => {
    expect(
      describeCall({
        id: 'c',
        tool: 'daytona-execute',
        args: { action: 'execute-command', command: 'echo a\n  && echo b' },
      }),
    ).toBe('execute-command echo a && echo b');
    expect(describeCall({ id: 'c', tool: 'daytona-execute', args: { action: 'list-files' } })).toBe('list-files .');
    expect(
      describeCall({ id: 'c', tool: 'daytona-execute', args: { action: 'execute-command', command: 'x'.repeat(200) } }),
    ).toHaveLength(80);
  });
});

const view: TaskView = {
  id: 'task-1',
  status: 'completed',
  prompt: 'Research the market',
  createdAt: '2026-01-01T00:00:00.000Z',
  startedAt: '2026-01-01T00:00:01.000Z',
  finishedAt: '2026-01-01T00:00:13.500Z',
  workerId: 'w1',
  progress: { step: 2, maxSteps: 40, phase: 'done' },
  steps: [
    { index: 0, action: 'create-file', status: 'completed', attempts: 1, durationMs: 12 },
    { index: 1, action: 'execute-command', status: 'completed', attempts: 2, exitCode: 0, durationMs: 840 },
  ],
  result: {
    summary: 'Market looks fine.\nBuy low.',
    files: [
      { path: 'todo.md', size: 40 },
      { path: 'report.md', size: 2048 },
    ],
  },
};

describe('closing report', () => {
  it('shows status, summary, files and where the report is', () => {
    const lines = finalReport(view, { fileUrl: (p) => `http://127.0.0.1:3000/v1/jobs/task-1/files/${p}` });
    expect(lines).toEqual([
      'completed in 12.5 s · 2 steps · task task-1',
      '',
      'Summary:',
      '  Market looks fine.',
      '  Buy low.',
      '',
      'Files:',
      '  todo.md  40 B',
      '  report.md  2.0 KiB',
      '',
      'Report: research files task-1 report.md',
      '        http://127.0.0.1:3000/v1/jobs/task-1/files/report.md',
    ]);
  });

  it('shows the error of a failed task and points at the file list when there is no report', () => {
    const failed: TaskView = {
      ...view,
      status: 'failed',
      error: { code: 'timeout', message: 'task exceeded its 60 s budget' },
      result: { summary: '', files: [] },
    };
    const lines = finalReport(failed, { fileUrl: (p) => p });
    expect(lines[0]).toMatch(/^failed in/);
    expect(lines).toContain('error: timeout: task exceeded its 60 s budget');
    expect(lines.at(-1)).toBe('Files: research files task-1');
  });

  it('picks report.md, else a top-level Markdown file that is not the todo list', () => {
    expect(pickReport(['todo.md', 'out/report.md', 'report.md'])).toBe('report.md');
    expect(pickReport(['todo.md', 'out/Report.md'])).toBe('out/Report.md');
    expect(pickReport(['todo.md', 'analysis.md'])).toBe('analysis.md');
    expect(pickReport(['data.csv'])).toBeUndefined();
  });

  it('status report lists the steps', () => {
    const text = statusReport(view).join('\n');
    expect(text).toContain('status    completed');
    expect(text).toContain('progress  step 2/40 · done');
    expect(text).toMatch(/2 {2}execute-command +completed \(exit 0, 840 ms, 2 attempts\)/);
  });
});

describe('live output', () => {
  const out = (chunk: string, stream: 'stdout' | 'stderr' = 'stdout'): TaskEvent => ({
    type: 'tool_output',
    at,
    step: 0,
    stream,
    chunk,
  });

  it('prints each line of a chunk under its step, stderr marked apart', () => {
    const s = applyEvent(initialState(), cmd(0, 'python3 slow.py'));
    expect(eventLine(s, out('tick 1\ntick 2\n'))).toBe('  | tick 1\n  | tick 2');
    expect(eventLine(s, out('oops\n', 'stderr'))).toBe('  ! oops');
    expect(eventLine(s, out(''))).toBeUndefined();
  });

  it('shows the last line beside the bar while the step runs, and drops it at its result', () => {
    let s = applyEvent(
      initialState({ status: 'running', progress: { step: 0, maxSteps: 5, phase: 'starting' } }),
      cmd(0, 'python3 slow.py'),
    );
    s = applyEvent(s, out('tick 1\ntick 2\n\n'));
    expect(barText(s)).toBe('running-step · execute-command python3 slow.py · tick 2');
    s = applyEvent(s, ran(0, 0, 5));
    expect(s.lastOutput).toBeUndefined();
    expect(barText(s)).toBe('thinking · execute-command python3 slow.py');
  });
});
