import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiErrorBody, type TaskAccepted } from '@research/contracts';
import { createLogger } from '@research/config';
import { configureHttpServer } from './http-server.js';
import { createServer, shutdownServer } from './server.js';
import { call, cleanPrefix, requireRedis, sse, testPrefix } from '@research/testing';
import { AUTH, KEY, startApi, type TestApi } from '../test/api.js';

const prefix = testPrefix('apitest');
const BODY_TIMEOUT_MS = 500;
let api: TestApi;
/** The same app on a server configured as `main.ts` configures its own. */
let configured: { port: number; close: () => Promise<void> };

beforeAll(async () => {
  await requireRedis();
  api = await startApi({ prefix, env: { BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) } });
  const app = createServer({
    env: api.env,
    redis: api.redis,
    store: api.store,
    queue: api.queue,
    logger: createLogger({ level: 'silent', pretty: false }),
  });
  const server = configureHttpServer(http.createServer(app));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  configured = {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await shutdownServer(app);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
});

afterAll(async () => {
  await configured?.close();
  await api?.close();
  await cleanPrefix(prefix);
});

const now = () => new Date().toISOString();

async function finishedTask(): Promise<string> {
  const res = await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'edges' } });
  const id = (res.json as TaskAccepted).id;
  await api.store.lifecycle.start(id, { workerId: 'worker-a', at: now() });
  await api.store.lifecycle.transition(id, 'completed', { result: { summary: 'done', files: [] } });
  return id;
}

/** Writes `head` (and `body`) on a bare socket; resolves with everything the server sent until it closed. */
function exchange(port: number, head: string, body = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head + body));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (received += d));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

function parseResponse(text: string): { status: number; headers: string; body: unknown } {
  const split = text.indexOf('\r\n\r\n');
  const headers = text.slice(0, split);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1]), headers, body: JSON.parse(text.slice(split + 4)) };
}

describe('event ids', () => {
  it.each([
    ['header', { 'last-event-id': '18446744073709551616-0' }, '', 'Last-Event-ID', { header: 'Last-Event-ID' }],
    ['header', { 'last-event-id': '1-18446744073709551616' }, '', 'Last-Event-ID', { header: 'Last-Event-ID' }],
    ['query', {}, '?lastEventId=18446744073709551616-0', 'lastEventId', { parameter: 'lastEventId' }],
    ['query', {}, '?lastEventId=99999999999999999999', 'lastEventId', { parameter: 'lastEventId' }],
  ])('an out-of-range id in the %s is a 400 naming the field', async (_where, headers, query, field, details) => {
    const id = await finishedTask();
    const res = await call(api.url, 'GET', `/v1/jobs/${id}/events${query}`, { headers: { ...AUTH, ...headers } });
    expect(res.status).toBe(400);
    const body = ApiErrorBody.parse(res.json);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toMatch(new RegExp(`^${field} must be`));
    expect(body.error.details).toEqual(details);
  });

  it('the largest valid id is accepted: nothing comes after it', async () => {
    const id = await finishedTask();
    const max = '18446744073709551615-18446744073709551615';
    const res = await call(api.url, 'GET', `/v1/jobs/${id}/events`, { headers: { ...AUTH, 'last-event-id': max } });
    expect(res.status).toBe(204);
  });
});

describe('a reconnect after the final event', () => {
  it('gets 204 and no body', async () => {
    const id = await finishedTask();
    const last = (await api.store.events.read(id)).at(-1)!.id;
    for (const [headers, query] of [
      [{ 'last-event-id': last }, ''],
      [{}, `?lastEventId=${last}`],
    ] as const) {
      const res = await call(api.url, 'GET', `/v1/jobs/${id}/events${query}`, { headers: { ...AUTH, ...headers } });
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
    }
    // A first connection (no id) still replays the finished task.
    const first = await sse(api.port, `/v1/jobs/${id}/events`, AUTH);
    await first.ended;
    expect(first.status).toBe(200);
    expect(first.messages.at(-1)?.id).toBe(last);
  });

  it('makes a standard EventSource (npm eventsource) stop instead of reconnecting for ever', async () => {
    const id = await finishedTask();
    const connections: number[] = [];
    const source = new EventSource(`${api.url}/v1/jobs/${id}/events`, {
      fetch: async (input, init) => {
        const res = await fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${KEY}` } });
        connections.push(res.status);
        return res;
      },
    });
    const received: string[] = [];
    source.addEventListener('status', (e) => received.push(JSON.parse(e.data).status));
    // The replay, the server closing, the reconnect (after the stream's `retry: 2000`), its 204.
    const stopped = await new Promise<{ code?: number }>((resolve) => {
      source.onerror = (e) => {
        if (source.readyState === EventSource.CLOSED) resolve(e as { code?: number });
      };
    });
    expect(received).toEqual(['queued', 'running', 'completed']);
    expect(stopped.code).toBe(204);
    expect(connections).toEqual([200, 204]);
    // Closed for good: past another retry interval, no further connection.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(connections).toEqual([200, 204]);
    expect(source.readyState).toBe(EventSource.CLOSED);
    source.close();
  });
});

describe('request bodies', () => {
  const post = (length: number) =>
    `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

  it('a declared body over MAX_BODY_BYTES gets 413 at once, before any of it is sent, and the connection closes', async () => {
    const res = parseResponse(await exchange(api.port, post(10_000_000)));
    expect(res.status).toBe(413);
    expect(ApiErrorBody.parse(res.body).error.code).toBe('payload_too_large');
    expect(res.headers).toMatch(/^connection: close$/im);
  });

  it('a body that stalls is cut after BODY_TIMEOUT_MS with 408 in the error shape', async () => {
    const res = parseResponse(await exchange(api.port, post(100), '{"prompt":'));
    expect(res.status).toBe(408);
    const body = ApiErrorBody.parse(res.body);
    expect(body.error).toMatchObject({ code: 'request_timeout', details: { timeoutMs: BODY_TIMEOUT_MS } });
    expect(res.headers).toMatch(/^connection: close$/im);
  });

  it('a body that arrives in time, slowly, is accepted', async () => {
    const body = '{"prompt":"slow but steady"}';
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(api.port, '127.0.0.1', async () => {
        socket.write(post(Buffer.byteLength(body)));
        for (const ch of body) {
          socket.write(ch);
          await new Promise((r) => setTimeout(r, 5));
        }
      });
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => {
        received += d;
        if (received.includes('\r\n\r\n{')) socket.end();
      });
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
    });
    expect(parseResponse(answer).status).toBe(202);
  });
});

describe('errors Node answers itself', () => {
  it.each([
    ['a malformed request line', 'NOT HTTP AT ALL\r\n\r\n', 400, 'bad_request'],
    [
      'oversized headers',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      'headers_too_large',
    ],
  ])('%s: %i in the error shape', async (_what, request, status, code) => {
    const res = parseResponse(await exchange(configured.port, request));
    expect(res.status).toBe(status);
    expect(ApiErrorBody.parse(res.body).error.code).toBe(code);
  });
});

describe('security headers', () => {
  it('every answer forbids framing, sniffing and loading anything', async () => {
    for (const [path, headers] of [
      ['/healthz', {}],
      ['/v1/jobs/nope', AUTH],
      ['/v1/jobs/nope', {}],
    ] as const) {
      const res = await call(api.url, 'GET', path, { headers });
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(res.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it("a task's file is served sandboxed, unframeable and unsniffable", async () => {
    const { json } = await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'a page' } });
    const id = (json as TaskAccepted).id;
    const page = Buffer.from('<script>alert(1)</script>');
    await api.store.files.save(id, [{ path: 'page.html', size: page.length, content: page }]);
    const res = await call(api.url, 'GET', `/v1/jobs/${id}/files/page.html`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const part of ["default-src 'none'", 'sandbox', "frame-ancestors 'none'"]) expect(csp).toContain(part);
  });
});
