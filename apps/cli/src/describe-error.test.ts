import { describe, expect, it } from 'vitest';
import { ApiError, ConnectionError } from '@research/client';
import { describeError } from './commands.js';

const conn = { url: 'http://127.0.0.1:3000', key: 'k' };

describe('error messages', () => {
  it('maps each failure to one line and an exit code', () => {
    expect(describeError(new ApiError(401, 'unauthorized', 'x'), { conn })).toEqual({
      message: 'the API at http://127.0.0.1:3000 refused the key (401 unauthorized): check RESEARCH_API_KEY or --key',
      code: 3,
    });
    expect(describeError(new ApiError(404, 'not_found', 'no job t1'), { conn, id: 't1' })).toEqual({
      message: 'task t1 not found (404): no job t1',
      code: 4,
    });
    expect(
      describeError(new ApiError(400, 'invalid_request', 'invalid request body: prompt: prompt must not be empty'), {
        conn,
      }).code,
    ).toBe(2);
    expect(describeError(new ApiError(503, 'redis_unavailable', 'Redis is unavailable'), { conn }).message).toContain(
      'not ready',
    );
    expect(
      describeError(new ConnectionError('http://127.0.0.1:3000/v1/jobs', 'ENOTFOUND'), { conn }).message,
    ).toContain('(unknown host)');
    expect(describeError(new Error('boom'), { conn })).toEqual({ message: 'boom', code: 1 });
  });
});
