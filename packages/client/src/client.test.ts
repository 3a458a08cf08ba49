import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, listen, type Listening } from '@research/testing';
import {
  ApiError,
  ConnectionError,
  NotFoundError,
  ProtocolError,
  RateLimitError,
  ResearchClient,
  TimeoutError,
  socketErrorCode,
} from './index.js';

// Loopback servers that answer what a broken proxy or a newer API might: the cases the real API never sends.
const servers: Listening[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = await listen(handler);
  servers.push(server);
  return server.url;
}

describe('ResearchClient', () => {
  it('sends the bearer key and maps the error body to a typed error', async () => {
    let auth: string | undefined;
    const baseUrl = await serve((req, res) => {
      auth = req.headers.authorization;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'no job x' } }));
    });
    const err = await new ResearchClient({ baseUrl: `${baseUrl}/`, apiKey: 'secret' }).get('x').catch((e) => e);
    expect(auth).toBe('Bearer secret');
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, code: 'not_found', message: 'no job x', name: 'NotFoundError' });
  });

  it('keeps a non-JSON error readable', async () => {
    const baseUrl = await serve((_req, res) => {
      res.writeHead(502, 'Bad Gateway');
      res.end('<h1>Bad Gateway</h1>');
    });
    await expect(new ResearchClient({ baseUrl, apiKey: 'k' }).files('x')).rejects.toMatchObject({
      status: 502,
      code: 'http_502',
      message: 'HTTP 502 Bad Gateway: <h1>Bad Gateway</h1>',
    });
  });

  it('reads Retry-After of a 429', async () => {
    const baseUrl = await serve((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' });
      res.end(JSON.stringify({ error: { code: 'quota_exceeded', message: 'too many queued' } }));
    });
    const err = await new ResearchClient({ baseUrl, apiKey: 'k' }).submit({ prompt: 'x' }).catch((e) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toMatchObject({ status: 429, code: 'quota_exceeded', retryAfterSeconds: 7 });
  });

  it('refuses a 2xx answer that breaks the contract, naming the field', async () => {
    const baseUrl = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', status: 'sleeping' }));
    });
    const err = await new ResearchClient({ baseUrl, apiKey: 'k' }).get('x').catch((e) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toMatch(/^unexpected answer to GET \/v1\/jobs\/x: /);
  });

  it('gives up on a request that gets no answer within its timeout', async () => {
    const baseUrl = await serve(() => {
      // never answers
    });
    const err = await new ResearchClient({ baseUrl, apiKey: 'k', requestTimeoutMs: 200 }).get('x').catch((e) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ timeoutMs: 200 });
  });

  it('encodes ids and file paths segment by segment', () => {
    const client = new ResearchClient({ baseUrl: 'http://127.0.0.1:3000', apiKey: 'k' });
    expect(client.fileUrl('a b', '/data/my file.csv')).toBe(
      'http://127.0.0.1:3000/v1/jobs/a%20b/files/data/my%20file.csv',
    );
  });

  it('gives up reconnecting after its budget with the connection error', async () => {
    const client = new ResearchClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, apiKey: 'k' });
    const attempts: number[] = [];
    const iterate = async () => {
      for await (const _ of client.events('x', {
        reconnectDelayMs: 10,
        maxFailures: 3,
        onReconnect: (i) => attempts.push(i.attempt),
      })) {
        // nothing arrives
      }
    };
    const err = await iterate().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).code).toBe('ECONNREFUSED');
    expect(attempts).toEqual([1, 2]);
  });

  it('does not retry a 404 on the event stream', async () => {
    let calls = 0;
    const baseUrl = await serve((_req, res) => {
      calls++;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'no job x' } }));
    });
    const iterate = async () => {
      for await (const _ of new ResearchClient({ baseUrl, apiKey: 'k' }).events('x')) {
        // nothing
      }
    };
    await expect(iterate()).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toBe(1);
  });
});

describe('socketErrorCode', () => {
  it('finds the socket code in undici chains, including AggregateError', () => {
    expect(socketErrorCode({ cause: { code: 'ECONNREFUSED' } })).toBe('ECONNREFUSED');
    expect(socketErrorCode({ cause: { errors: [{ code: 'ECONNREFUSED' }] } })).toBe('ECONNREFUSED');
    expect(socketErrorCode(new Error('x'))).toBeUndefined();
  });
});
