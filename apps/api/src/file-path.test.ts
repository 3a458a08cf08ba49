import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.js';
import { contentTypeOf, workspacePath } from './file-path.js';

const refusal = (tail: string) => {
  try {
    workspacePath(tail);
  } catch (err) {
    return err instanceof ApiError ? { status: err.status, code: err.code } : { status: 0, code: 'not an ApiError' };
  }
  return undefined;
};

describe('workspacePath', () => {
  it.each([
    ['report.md', 'report.md'],
    ['data/results.json', 'data/results.json'],
    ['my%20notes.txt', 'my notes.txt'],
    ['a..b/c..', 'a..b/c..'],
    ['.hidden', '.hidden'],
  ])('accepts %s as %s', (tail, path) => {
    expect(workspacePath(tail)).toBe(path);
  });

  it.each([
    '..',
    '../x',
    'a/../../x',
    'a/..',
    '%2e%2e/x',
    '%2E%2e%2Fx',
    '%252e%252e%252fx',
    '%25252e%25252e/x',
    '/etc/passwd',
    '%2fetc%2fpasswd',
    '%252fetc',
    'C:/Windows',
    'c:%5cx',
    'a%5cb',
    '..%5cx',
    'a%255cb',
    'x%00',
    'x%2500',
    '%25%32%65%25%32%65/x',
  ])('refuses %s with 400 path_outside_workspace', (tail) => {
    expect(refusal(tail)).toEqual({ status: 400, code: 'path_outside_workspace' });
  });

  it('refuses malformed encodings and encoding nested deeper than any honest client sends', () => {
    expect(refusal('%')).toMatchObject({ status: 400 });
    expect(refusal('%c0%ae%c0%ae')).toMatchObject({ status: 400 });
    let deep = 'x';
    for (let i = 0; i < 10; i++) deep = encodeURIComponent(`${deep}%`);
    expect(refusal(deep)).toMatchObject({ status: 400 });
  });
});

describe('contentTypeOf', () => {
  it('goes by extension, then by content', () => {
    expect(contentTypeOf('report.md', Buffer.from('# r'))).toBe('text/markdown; charset=utf-8');
    expect(contentTypeOf('a/b.CSV', Buffer.from('a,b'))).toBe('text/csv; charset=utf-8');
    expect(contentTypeOf('page.html', Buffer.from('<script>'))).toBe('text/plain; charset=utf-8');
    expect(contentTypeOf('Makefile', Buffer.from('all:'))).toBe('text/plain; charset=utf-8');
    expect(contentTypeOf('blob', Buffer.from([0xff, 0x00]))).toBe('application/octet-stream');
    expect(contentTypeOf('chart.png', Buffer.from([0x89]))).toBe('image/png');
  });
});
