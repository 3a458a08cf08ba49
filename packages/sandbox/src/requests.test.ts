import { ACTION_LIST, type SandboxAction } from '@research/contracts';
import { describe, expect, it } from 'vitest';
import { PathOutsideWorkspaceError } from './errors.js';
import { actionRequest } from './requests.js';

const sandboxActions = ACTION_LIST.filter((a) => a.runsIn === 'sandbox');

describe('the request mapping, derived from the action catalog', () => {
  it.each(sandboxActions.map((a) => [a.name, a] as const))(
    '%s: op is the action, its parameters follow, its path parameters are resolved in the task directory',
    (name, entry) => {
      const args = entry.example.args as SandboxAction;
      const req = actionRequest('t-1', args) as unknown as Record<string, unknown>;
      expect(req.op).toBe(name);
      expect(req.task).toBe('t-1');
      expect(req.action).toBeUndefined();
      for (const [k, v] of Object.entries(args)) {
        if (k === 'action') continue;
        if (entry.pathParams.includes(k))
          expect(req[k]).toBe(`/workspace/t-1/${String(v).replace(/^\.\/?/, '')}`.replace(/\/$/, ''));
        else expect(req[k]).toEqual(v);
      }
      // Absent optional path parameters are the task directory itself.
      for (const p of entry.pathParams) expect(String(req[p])).toMatch(/^\/workspace\/t-1(\/|$)/);
    },
  );

  it.each(sandboxActions.flatMap((a) => a.pathParams.map((p) => [a.name, p, a] as const)))(
    '%s: a %s outside the task directory is refused before anything is sent',
    (_name, param, entry) => {
      const args = { ...(entry.example.args as Record<string, unknown>), [param]: '../other/x' } as SandboxAction;
      expect(() => actionRequest('t-1', args)).toThrow(PathOutsideWorkspaceError);
    },
  );
});
