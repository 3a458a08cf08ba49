import { describe, expect, it } from 'vitest';
import { InvalidTaskIdError, PathOutsideWorkspaceError } from './errors.js';
import { resolveTaskPath } from './paths.js';

describe('resolveTaskPath', () => {
  const t = 'task-1';

  it.each([
    ['notes.md', '/workspace/task-1/notes.md'],
    ['./notes.md', '/workspace/task-1/notes.md'],
    ['a/b/c.txt', '/workspace/task-1/a/b/c.txt'],
    ['a//b/./c.txt', '/workspace/task-1/a/b/c.txt'],
    ['a/../b.txt', '/workspace/task-1/b.txt'],
    ['.', '/workspace/task-1'],
    ['', '/workspace/task-1'],
    ['dir/', '/workspace/task-1/dir'],
    ['/workspace/task-1', '/workspace/task-1'],
    ['/workspace/task-1/x/y', '/workspace/task-1/x/y'],
    ['/workspace/task-1/../task-1/z', '/workspace/task-1/z'],
    ['../task-1/z', '/workspace/task-1/z'],
    ['..data', '/workspace/task-1/..data'],
  ])('%j resolves to %s', (input, expected) => {
    expect(resolveTaskPath(t, input)).toBe(expected);
  });

  it.each([
    '..',
    '../other/x',
    'a/../../x',
    '../../etc/passwd',
    '/etc/passwd',
    '/workspace',
    '/workspace/other-task/x',
    '/workspace/task-10/x',
    '/workspace/task-1/../other',
    'x\0y',
  ])('%j is refused', (input) => {
    expect(() => resolveTaskPath(t, input)).toThrow(PathOutsideWorkspaceError);
  });

  it('names the path and the task directory in the error', () => {
    try {
      resolveTaskPath(t, '../secret');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PathOutsideWorkspaceError);
      const e = err as PathOutsideWorkspaceError;
      expect(e.code).toBe('path_outside_workspace');
      expect(e.retryable).toBe(false);
      expect(e.name).toBe('PathOutsideWorkspaceError');
      expect(e.message).toContain('../secret');
      expect(e.message).toContain('/workspace/task-1');
    }
  });

  it.each(['', '../x', 'a/b', 'a b', 'x'.repeat(129), '.', 'ü'])('rejects task id %j', (taskId) => {
    expect(() => resolveTaskPath(taskId, 'x')).toThrow(InvalidTaskIdError);
  });
});
