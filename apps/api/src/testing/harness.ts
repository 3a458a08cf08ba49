import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { createLogger, loadConfig, type Env } from '@research/config';
import { AGENT_QUEUE, TaskStore, createRedis, waitForRedis, type Redis, type TaskJobData } from '@research/queue';
import { createServer, shutdownServer } from '../server.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const KEY = 'test-key-one-0123456789';
/** A key of another tenant (`other`). */
export const OTHER_KEY = 'test-key-two-0123456789';
export const AUTH = { authorization: `Bearer ${KEY}` };

export interface TestApi {
  url: string;
  port: number;
  env: Env;
  redis: Redis;
  store: TaskStore;
  queue: Queue<TaskJobData>;
  close(): Promise<void>;
}

/** A unique, hash-tagged prefix per test file so files never see each other's keys. */
export function testPrefix(): string {
  return `{apitest-${randomBytes(4).toString('hex')}}`;
}

/** Fails fast, saying what to start, when the test Redis is not there. */
export async function requireRedis(url = REDIS_URL): Promise<void> {
  const probe = createRedis(url, 'api', { lazyConnect: false, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await waitForRedis(probe, url, 3_000);
  } catch {
    throw new Error(`Redis not reachable at ${url} — start redis-server (or set REDIS_URL)`);
  } finally {
    probe.disconnect();
  }
}

/** The app from `createServer`, listening on an ephemeral loopback port, over real Redis. */
export async function startApi(options: {
  prefix: string;
  redisUrl?: string;
  env?: Record<string, string>;
  waitReady?: boolean;
}): Promise<TestApi> {
  const redisUrl = options.redisUrl ?? REDIS_URL;
  const env = loadConfig([], {
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: options.prefix,
    API_KEYS: `${KEY},other:${OTHER_KEY}`,
    LOG_LEVEL: 'silent',
    MAX_BODY_BYTES: String(16 * 1024),
    ...options.env,
  });
  const redis = createRedis(redisUrl, 'api');
  redis.on('error', () => {});
  if (options.waitReady !== false) await waitForRedis(redis, redisUrl, 3_000);
  const store = new TaskStore(redis, options.prefix, { retentionSeconds: 600 });
  const queue = new Queue<TaskJobData>(AGENT_QUEUE, { connection: redis, prefix: options.prefix });
  queue.on('error', () => {});
  const logger = createLogger({ level: 'silent', pretty: false });
  const app = createServer({ env, redis, store, queue, logger });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    env,
    redis,
    store,
    queue,
    async close() {
      await shutdownServer(app);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queue.close().catch(() => {});
      redis.disconnect();
    },
  };
}

/** Deletes every key under the prefix (run in afterAll). */
export async function cleanPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = createRedis(url, 'worker');
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  } finally {
    redis.disconnect();
  }
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): unknown;
}

/**
 * A request with the path sent exactly as given (fetch would normalise `..` and `%2e%2e`),
 * and with full control of headers and body bytes.
 */
export function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: text,
          json: () => JSON.parse(text) as unknown,
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
}

export interface SseClient {
  status: number;
  headers: http.IncomingHttpHeaders;
  messages: SseMessage[];
  /** Raw text received, comments included. */
  text: () => string;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Resolves once at least `n` messages with data arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<SseMessage[]>;
  close(): void;
}

/** A minimal SSE reader for asserting what a client sees, message by message. */
export function sse(port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream', ...headers }, agent: false },
      (res) => {
        res.setEncoding('utf8');
        let buffer = '';
        let all = '';
        const messages: SseMessage[] = [];
        const waiters: (() => void)[] = [];
        let endResolve!: () => void;
        const ended = new Promise<void>((r) => {
          endResolve = r;
        });
        res.on('data', (chunk: string) => {
          all += chunk;
          buffer += chunk;
          for (let idx = buffer.indexOf('\n\n'); idx >= 0; idx = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, idx);
            buffer = buffer.slice(idx + 2);
            const msg: SseMessage = {};
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'id') msg.id = value;
              else if (field === 'event') msg.event = value;
              else if (field === 'data') msg.data = msg.data === undefined ? value : `${msg.data}\n${value}`;
            }
            if (msg.data !== undefined) messages.push(msg);
          }
          for (const w of waiters.splice(0)) w();
        });
        res.on('end', () => {
          endResolve();
          for (const w of waiters.splice(0)) w();
        });
        res.on('close', () => {
          endResolve();
          for (const w of waiters.splice(0)) w();
        });
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          messages,
          text: () => all,
          ended,
          async waitFor(n, timeoutMs = 5_000) {
            const deadline = Date.now() + timeoutMs;
            while (messages.length < n) {
              if (res.readableEnded || Date.now() > deadline) break;
              await new Promise<void>((r) => {
                waiters.push(r);
                setTimeout(r, 100);
              });
            }
            return messages;
          },
          close() {
            req.destroy();
          },
        });
      },
    );
    req.on('error', reject);
  });
}

/** JSON helper over fetch for ordinary requests. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown } = {},
) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    body:
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the route answered
  return { status: res.status, headers: res.headers, text, json: json as any };
}
