import { describe, expect, it } from 'vitest';
import { ResearchClient } from './client.js';
import { describeError } from './commands.js';
import { ApiError, ConnectionError, ProtocolError, socketErrorCode } from './errors.js';

const conn = { url: 'http://127.0.0.1:3000', key: 'k' };

function fakeFetch(respond: (url: string, init?: RequestInit) => Response | Promise<Response>): typeof fetch {
  return (input, init) => Promise.resolve(respond(String(input), init));
}

describe('ResearchClient', () => {
  it('sends the bearer key and maps the error body to ApiError', async () => {
    let auth: string | null = null;
    const client = new ResearchClient({
      baseUrl: 'http://127.0.0.1:3000/',
      apiKey: 'secret',
      fetch: fakeFetch((_url, init) => {
        auth = new Headers(init?.headers).get('authorization');
        return Response.json({ error: { code: 'not_found', message: 'no job x' } }, { status: 404 });
      }),
    });
    const err = await client.get('x').catch((e: unknown) => e);
    expect(auth).toBe('Bearer secret');
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, code: 'not_found', message: 'no job x' });
  });

  it('keeps a non-JSON error readable', async () => {
    const client = new ResearchClient({
      apiKey: 'k',
      fetch: fakeFetch(() => new Response('<h1>Bad Gateway</h1>', { status: 502, statusText: 'Bad Gateway' })),
    });
    await expect(client.files('x')).rejects.toMatchObject({
      status: 502,
      code: 'http_502',
      message: 'HTTP 502 Bad Gateway: <h1>Bad Gateway</h1>',
    });
  });

  it('refuses a 2xx answer that breaks the contract', async () => {
    const client = new ResearchClient({ apiKey: 'k', fetch: fakeFetch(() => Response.json({ hello: 1 })) });
    await expect(client.get('x')).rejects.toBeInstanceOf(ProtocolError);
  });

  it('encodes ids and file paths segment by segment', () => {
    const client = new ResearchClient({ baseUrl: 'http://127.0.0.1:3000', apiKey: 'k' });
    expect(client.fileUrl('a b', '/data/my file.csv')).toBe(
      'http://127.0.0.1:3000/v1/jobs/a%20b/files/data/my%20file.csv',
    );
  });

  it('gives up reconnecting after its budget with the connection error', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    });
    const client = new ResearchClient({ apiKey: 'k', fetch: () => Promise.reject(refused) });
    const attempts: number[] = [];
    const iterate = async () => {
      for await (const _ of client.events('x', {
        reconnectForMs: 50,
        reconnectDelayMs: 10,
        onReconnect: (i) => attempts.push(i.attempt),
      })) {
        // nothing arrives
      }
    };
    const err = await iterate().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).code).toBe('ECONNREFUSED');
    expect(attempts.length).toBeGreaterThan(0);
  });

  it('does not retry a 404 on the event stream', async () => {
    let calls = 0;
    const client = new ResearchClient({
      apiKey: 'k',
      fetch: fakeFetch(() => {
        calls++;
        return Response.json({ error: { code: 'not_found', message: 'no job x' } }, { status: 404 });
      }),
    });
    const iterate = async () => {
      for await (const _ of client.events('x')) {
        // nothing
      }
    };
    await expect(iterate()).rejects.toMatchObject({ status: 404 });
    expect(calls).toBe(1);
  });
});

describe('error messages', () => {
  it('finds the socket code in undici chains, including AggregateError', () => {
    expect(socketErrorCode({ cause: { code: 'ECONNREFUSED' } })).toBe('ECONNREFUSED');
    expect(socketErrorCode({ cause: { errors: [{ code: 'ECONNREFUSED' }] } })).toBe('ECONNREFUSED');
    expect(socketErrorCode(new Error('x'))).toBeUndefined();
  });

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
