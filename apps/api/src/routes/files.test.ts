import { beforeAll, describe, expect, it } from 'vitest';
import { ApiErrorBody, type TaskAccepted } from '@research/contracts';
import { call, raw } from '@research/testing';
import { AUTH, useApi } from '../../test/api.js';

const api = useApi();
let id: string;
let otherId: string;

const SECRET = 'other task secret';

beforeAll(async () => {
  const submit = async () =>
    ((await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'files' } })).json as TaskAccepted).id;
  id = await submit();
  otherId = await submit();
  await api.store.files.save(otherId, [{ path: 'secret.txt', size: SECRET.length, content: Buffer.from(SECRET) }]);
});

describe('GET /v1/jobs/:id/files', () => {
  it('is empty until the worker saves a snapshot, then lists path and size', async () => {
    expect((await call(api.url, 'GET', `/v1/jobs/${id}/files`, { headers: AUTH })).json).toEqual({ files: [] });
    await api.store.files.save(id, [
      { path: 'todo.md', size: 9, content: Buffer.from('# todo\n- ') },
      { path: 'data/results.json', size: 11, content: Buffer.from('{"ok":true}') },
      { path: 'notes', size: 5, content: Buffer.from('plain') },
      { path: 'blob.bin', size: 3, content: Buffer.from([0, 255, 1]) },
      { path: 'big.csv', size: 50_000_000 },
    ]);
    const res = await call(api.url, 'GET', `/v1/jobs/${id}/files`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      files: [
        { path: 'todo.md', size: 9 },
        { path: 'data/results.json', size: 11 },
        { path: 'notes', size: 5 },
        { path: 'blob.bin', size: 3 },
        { path: 'big.csv', size: 50_000_000 },
      ],
    });
  });

  it('answers 404 for an unknown task', async () => {
    expect((await call(api.url, 'GET', '/v1/jobs/no-such-task/files', { headers: AUTH })).status).toBe(404);
  });
});

describe('GET /v1/jobs/:id/files/<path>', () => {
  it('serves stored bytes with a content type by extension', async () => {
    const md = await raw(api.port, 'GET', `/v1/jobs/${id}/files/todo.md`, AUTH);
    expect(md.status).toBe(200);
    expect(md.body).toBe('# todo\n- ');
    expect(md.headers['content-type']).toBe('text/markdown; charset=utf-8');
    expect(md.headers['x-content-type-options']).toBe('nosniff');

    const nested = await raw(api.port, 'GET', `/v1/jobs/${id}/files/data/results.json`, AUTH);
    expect(nested.status).toBe(200);
    expect(nested.json()).toEqual({ ok: true });
    expect(nested.headers['content-type']).toMatch(/^application\/json/);

    const plain = await raw(api.port, 'GET', `/v1/jobs/${id}/files/notes`, AUTH);
    expect(plain.headers['content-type']).toBe('text/plain; charset=utf-8');
    const bin = await raw(api.port, 'GET', `/v1/jobs/${id}/files/blob.bin`, AUTH);
    expect(bin.headers['content-type']).toBe('application/octet-stream');
  });

  it('answers 404 not_found for a file that is not there, and file_not_kept for one too big to keep', async () => {
    const missing = await raw(api.port, 'GET', `/v1/jobs/${id}/files/nope.md`, AUTH);
    expect(missing.status).toBe(404);
    expect(ApiErrorBody.parse(missing.json()).error.code).toBe('not_found');
    const big = await raw(api.port, 'GET', `/v1/jobs/${id}/files/big.csv`, AUTH);
    expect(big.status).toBe(404);
    const body = ApiErrorBody.parse(big.json());
    expect(body.error.code).toBe('file_not_kept');
    expect(body.error.message).toMatch(/too big/);
  });

  const traversals = [
    '../secret.txt',
    `../${'otherId'}/secret.txt`,
    'a/../../secret.txt',
    '..',
    '%2e%2e/secret.txt',
    '%2E%2E%2Fsecret.txt',
    '%252e%252e/secret.txt',
    '%25252e%25252e%25252fsecret.txt',
    '..%2fsecret.txt',
    '..%252fsecret.txt',
    '%2fetc%2fpasswd',
    '%252Fetc%252Fpasswd',
    '/etc/passwd',
    '/workspace/x/secret.txt',
    'C:%5cWindows%5cwin.ini',
    '..%5csecret.txt',
    '..%255csecret.txt',
    'a%5c..%5c..%5csecret.txt',
    'todo.md%00.png',
    'todo.md%2500',
    '%c0%ae%c0%ae/secret.txt',
    '%',
  ];

  it.each(traversals)('refuses %s with 400 and never content', async (tail) => {
    const path = `/v1/jobs/${id}/files/${tail.replace('otherId', otherId)}`;
    const res = await raw(api.port, 'GET', path, AUTH);
    expect(res.status).toBe(400);
    expect(res.body).not.toContain(SECRET);
    expect(res.body).not.toContain('root:');
    const code = ApiErrorBody.parse(res.json()).error.code;
    expect(['path_outside_workspace', 'invalid_request']).toContain(code);
  });

  it('refuses the plain traversal forms with path_outside_workspace specifically', async () => {
    for (const tail of [
      '../secret.txt',
      '%2e%2e/secret.txt',
      '%252e%252e/secret.txt',
      '%2fetc%2fpasswd',
      '..%5csecret.txt',
      'x%00',
    ]) {
      const res = await raw(api.port, 'GET', `/v1/jobs/${id}/files/${tail}`, AUTH);
      expect(ApiErrorBody.parse(res.json()).error.code).toBe('path_outside_workspace');
    }
  });

  it("does not serve another task's files under this task's id", async () => {
    const res = await raw(api.port, 'GET', `/v1/jobs/${id}/files/secret.txt`, AUTH);
    expect(res.status).toBe(404);
    const own = await raw(api.port, 'GET', `/v1/jobs/${otherId}/files/secret.txt`, AUTH);
    expect(own.body).toBe(SECRET);
  });

  it('needs a key', async () => {
    expect((await raw(api.port, 'GET', `/v1/jobs/${id}/files/todo.md`)).status).toBe(401);
  });
});
