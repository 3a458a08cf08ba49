import { describe, expect, it } from 'vitest';
import {
  DaytonaAction,
  StepOutcome,
  TaskAccepted,
  TaskEvent,
  TaskRequest,
  TaskView,
  ToolCall,
  ApiErrorBody,
} from './index.js';

const now = new Date().toISOString();
const messages = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('TaskRequest', () => {
  it('accepts what the design allows', () => {
    expect(TaskRequest.parse({ prompt: 'Research current market conditions' })).toEqual({
      prompt: 'Research current market conditions',
    });
    expect(
      TaskRequest.parse({
        prompt: ' p ',
        maxSteps: 5,
        timeoutSeconds: 60,
        model: 'm',
        metadata: { team: 'x', n: 1, ok: true, none: null },
      }).prompt,
    ).toBe('p');
  });

  it.each([
    [{}, 'prompt: prompt is required'],
    [{ prompt: 42 }, 'prompt: prompt is required and must be a string'],
    [{ prompt: '   ' }, 'prompt: prompt must not be empty'],
    [{ prompt: 'a\u0000b' }, 'prompt: prompt must not contain NUL'],
    [{ prompt: 'p', maxSteps: 0 }, 'maxSteps'],
    [{ prompt: 'p', maxSteps: 1.5 }, 'maxSteps'],
    [{ prompt: 'p', timeoutSeconds: -1 }, 'timeoutSeconds'],
    [{ prompt: 'p', extra: 1 }, 'Unrecognized key'],
    [{ prompt: 'p', metadata: JSON.parse('{"__proto__": "x"}') }, 'metadata'],
    [{ prompt: 'p', metadata: { nested: { a: 1 } } }, 'metadata.nested'],
  ])('rejects %j with a readable message', (body, expected) => {
    const r = TaskRequest.safeParse(body);
    expect(r.success).toBe(false);
    expect(messages(r).join('\n')).toContain(expected);
  });
});

describe('DaytonaAction and ToolCall', () => {
  it('accepts the four actions of the seed', () => {
    expect(DaytonaAction.parse({ action: 'create-file', filePath: 'todo.md', content: '# x' }).action).toBe(
      'create-file',
    );
    expect(DaytonaAction.parse({ action: 'execute-command', command: 'python3 -V', timeoutMs: '5000' })).toMatchObject({
      timeoutMs: 5000,
    });
    expect(DaytonaAction.parse({ action: 'read-file', filePath: 'a.json' }).action).toBe('read-file');
    expect(DaytonaAction.parse({ action: 'list-files' }).action).toBe('list-files');
    expect(
      ToolCall.parse({ id: 'c1', tool: 'daytona-execute', args: { action: 'list-files', path: '.' } }).args,
    ).toEqual({ action: 'list-files', path: '.' });
  });

  it('rejects unknown actions and missing parameters', () => {
    expect(messages(DaytonaAction.safeParse({ action: 'delete-file', filePath: 'x' })).join()).toMatch(/action/);
    expect(messages(DaytonaAction.safeParse({ action: 'create-file', content: 'x' })).join()).toMatch(/filePath/);
    expect(messages(DaytonaAction.safeParse({ action: 'execute-command', command: '' })).join()).toMatch(
      /command must not be empty/,
    );
    expect(DaytonaAction.safeParse({ action: 'read-file', filePath: 'x', extra: 1 }).success).toBe(false);
  });
});

describe('StepOutcome', () => {
  it('carries results and refusals', () => {
    expect(
      StepOutcome.parse({
        ok: true,
        result: {
          action: 'execute-command',
          exitCode: 1,
          stdout: '',
          stderr: 'x',
          timedOut: false,
          truncated: false,
          durationMs: 3,
        },
      }).ok,
    ).toBe(true);
    expect(StepOutcome.parse({ ok: false, error: { code: 'path_outside_workspace', message: 'no' } }).ok).toBe(false);
    expect(StepOutcome.safeParse({ ok: true, result: { action: 'execute-command', exitCode: 'x' } }).success).toBe(
      false,
    );
  });
});

describe('TaskView, TaskAccepted, TaskEvent, ApiErrorBody', () => {
  it("accepts the design's task view", () => {
    const view = {
      id: 't1',
      status: 'completed',
      prompt: 'p',
      createdAt: now,
      startedAt: now,
      finishedAt: now,
      workerId: 'w1',
      progress: { step: 3, maxSteps: 10, phase: 'done' },
      steps: [{ index: 0, action: 'create-file', status: 'completed', attempts: 1, durationMs: 2 }],
      result: { summary: 's', files: [{ path: 'report.md', size: 10 }] },
    };
    expect(TaskView.parse(view)).toEqual(view);
    expect(TaskView.safeParse({ ...view, status: 'done' }).success).toBe(false);
    expect(TaskView.safeParse({ ...view, createdAt: 'yesterday' }).success).toBe(false);
  });

  it('accepts the accepted answer', () => {
    expect(
      TaskAccepted.parse({
        id: 't',
        status: 'queued',
        createdAt: now,
        links: { self: '/v1/jobs/t', events: 'e', files: 'f', cancel: 'c' },
      }).status,
    ).toBe('queued');
  });

  it('accepts each event type and rejects unknown ones', () => {
    const events = [
      { type: 'status', at: now, status: 'running', workerId: 'w' },
      { type: 'progress', at: now, progress: { step: 1, maxSteps: 2, phase: 'thinking' } },
      { type: 'turn', at: now, turn: 1 },
      { type: 'assistant_message', at: now, text: 'hi' },
      {
        type: 'tool_call',
        at: now,
        step: 0,
        call: { id: 'c', tool: 'daytona-execute', args: { action: 'list-files' } },
      },
      {
        type: 'tool_result',
        at: now,
        step: 0,
        action: 'list-files',
        outcome: { ok: true, result: { action: 'list-files', path: '.', files: [], truncated: false } },
        durationMs: 1,
      },
      { type: 'tool_error', at: now, message: 'bad block' },
      { type: 'finished', at: now, summary: 's', reason: 'answer' },
    ];
    for (const e of events) expect(TaskEvent.parse(e)).toEqual(e);
    expect(TaskEvent.safeParse({ type: 'exploded', at: now }).success).toBe(false);
  });

  it('describes errors in one shape', () => {
    expect(ApiErrorBody.parse({ error: { code: 'not_found', message: 'no such task' } }).error.code).toBe('not_found');
    expect(ApiErrorBody.safeParse({ error: 'x' }).success).toBe(false);
  });
});
