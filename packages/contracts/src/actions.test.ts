import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ACTION_LIST,
  ACTIONS,
  ActionResult,
  DaytonaAction,
  TOOLS,
  actionOf,
  actionsOfTool,
  describeActionResult,
  exitCodeOf,
  isActionName,
  summarizeAction,
} from './actions.js';

describe('the action catalog', () => {
  it('names each action once, and every action belongs to a listed tool', () => {
    expect(new Set(ACTIONS).size).toBe(ACTIONS.length);
    for (const a of ACTION_LIST) expect(TOOLS).toContain(a.tool);
    expect(actionsOfTool('daytona-execute').map((a) => a.name)).toEqual([
      'create-file',
      'execute-command',
      'read-file',
      'list-files',
    ]);
  });

  it("each entry's example is a valid call of that action, and the union takes it", () => {
    for (const a of ACTION_LIST) {
      expect(a.params.parse(a.example.args)).toEqual(a.example.args);
      expect(DaytonaAction.parse(a.example.args).action).toBe(a.name);
    }
  });

  it('path parameters and documented parameters are parameters of the action', () => {
    for (const a of ACTION_LIST) {
      const keys = Object.keys((z.toJSONSchema(a.params) as { properties: object }).properties);
      for (const p of a.pathParams) expect(keys).toContain(p);
      for (const p of Object.keys(a.paramDocs)) expect(keys).toContain(p);
      // Every parameter but the discriminator is documented for the model.
      expect(Object.keys(a.paramDocs).sort()).toEqual(keys.filter((k) => k !== 'action').sort());
    }
  });

  it('effects say what the worker must keep or stop after a step', () => {
    expect(actionOf('execute-command').effects).toMatchObject({ runsCode: true, writesWorkspace: true });
    expect(actionOf('create-file').effects).toMatchObject({ runsCode: false, writesWorkspace: true });
    expect(actionOf('read-file').effects).toMatchObject({ runsCode: false, writesWorkspace: false });
  });

  it('summaries and result descriptions come from the entry', () => {
    expect(summarizeAction({ action: 'execute-command', command: 'python3 analysis.py' })).toBe('python3 analysis.py');
    expect(summarizeAction({ action: 'list-files' })).toBe('.');
    const result = ActionResult.parse({
      action: 'execute-command',
      exitCode: 3,
      stdout: 'out',
      stderr: '',
      timedOut: false,
      truncated: false,
      durationMs: 1,
    });
    expect(describeActionResult(result)).toBe('exit code: 3\nstdout:\nout');
    expect(exitCodeOf(result)).toBe(3);
    expect(exitCodeOf({ action: 'create-file', path: 'a', bytes: 1, overwritten: false })).toBeUndefined();
  });

  it('knows its own names only', () => {
    expect(isActionName('list-files')).toBe(true);
    expect(isActionName('rm-rf')).toBe(false);
    expect(() => actionOf('rm-rf' as never)).toThrow(/unknown action/);
  });
});
