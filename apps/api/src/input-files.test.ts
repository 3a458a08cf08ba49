import { describe, expect, it } from 'vitest';
import { call } from '@research/testing';
import { AUTH, useApi } from '../test/api.js';

const api = useApi({ env: { MAX_BODY_BYTES: String(1024 * 1024) } });

describe('POST /v1/jobs with input files', () => {
  it('keeps the files beside the task, out of the job payload and the view', async () => {
    const files = [
      { path: 'data/prices.csv', content: 'day,price\n1,10\n' },
      { path: 'raw.bin', content: Buffer.from([0, 1, 2, 255]).toString('base64'), encoding: 'base64' },
    ];
    const res = await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'with files', files } });
    expect(res.status).toBe(202);
    const { id } = res.json as { id: string };
    const job = await api.queue.getJob(id);
    expect(job?.data.request).toEqual({ prompt: 'with files' });
    expect(job?.data.inputFiles).toBe(2);
    expect(await api.store.inputs.load(id)).toEqual([
      { path: 'data/prices.csv', content: 'day,price\n1,10\n', encoding: 'utf8' },
      files[1],
    ]);
    const view = await call(api.url, 'GET', `/v1/jobs/${id}`, { headers: AUTH });
    expect(view.status).toBe(200);
    expect(JSON.stringify(view.json)).not.toContain('prices.csv');
  });

  it.each([
    ['a path outside the workspace', [{ path: '../etc/passwd', content: 'x' }], 'files.0.path', '".." segment'],
    ['an absolute path', [{ path: '/etc/passwd', content: 'x' }], 'files.0.path', 'absolute path'],
    ['a backslash', [{ path: 'a\\b', content: 'x' }], 'files.0.path', 'backslash'],
    ['a directory', [{ path: 'dir/', content: 'x' }], 'files.0.path', 'directory'],
    [
      'two names of one file',
      [
        { path: 'a/b', content: 'x' },
        { path: './a//b', content: 'y' },
      ],
      'files.1.path',
      'same file',
    ],
    ['bad base64', [{ path: 'a', content: 'not base64!', encoding: 'base64' }], 'files.0.content', 'base64'],
    ['an unknown encoding', [{ path: 'a', content: 'x', encoding: 'hex' }], 'files.0.encoding', 'utf8'],
    ['an unknown field', [{ path: 'a', content: 'x', mode: '0755' }], 'files.0', 'mode'],
  ])('refuses %s with 400 naming the field, and creates no task', async (_name, files, field, words) => {
    const before = await api.queue.count();
    const res = await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'bad files', files } });
    expect(res.status).toBe(400);
    const body = res.json as { error: { code: string; message: string } };
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toContain(field);
    expect(body.error.message).toContain(words);
    expect(await api.queue.count()).toBe(before);
  });

  it('refuses a file over the per-file cap with 400', async () => {
    const big = 'x'.repeat(5 * 1024 * 1024 + 1);
    const { startApi } = await import('../test/api.js');
    const roomy = await startApi({ prefix: `${api.prefix}-big`, env: { MAX_BODY_BYTES: String(12 * 1024 * 1024) } });
    try {
      const res = await call(roomy.url, 'POST', '/v1/jobs', {
        headers: AUTH,
        body: { prompt: 'big', files: [{ path: 'big.txt', content: big }] },
      });
      expect(res.status).toBe(400);
      expect((res.json as { error: { message: string } }).error.message).toContain('at most 5242880 bytes per file');
    } finally {
      await roomy.close();
      const keys = await api.redis.keys(`${api.prefix}-big*`);
      if (keys.length > 0) await api.redis.del(...keys);
    }
  });
});
