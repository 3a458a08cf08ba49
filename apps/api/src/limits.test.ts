import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Request } from 'express';
import { ApiErrorBody } from '@research/contracts';
import { clientAddress } from './limits.js';
import { cleanPrefix, requireRedis, testPrefix } from '@research/testing';
import { KEY, OTHER_KEY, startApi, type TestApi } from '../test/api.js';

const prefix = testPrefix('apitest');
let api: TestApi;

beforeAll(async () => {
  await requireRedis();
  api = await startApi({ prefix, env: { AUTH_FAILURE_LIMIT_PER_MIN: '20', API_RATE_LIMIT_PER_MIN: '30' } });
});

afterAll(async () => {
  await api?.close();
  await cleanPrefix(prefix);
});

/** GET from a chosen loopback source address (the whole 127/8 is loopback on Linux). */
function getFrom(
  localAddress: string,
  path: string,
  key: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port: api.port,
        path,
        localAddress,
        agent: false,
        headers: { authorization: `Bearer ${key}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
  });
}

const UNKNOWN = '/v1/jobs/00000000-0000-4000-8000-000000000000';

describe('failed authentication, per client address', () => {
  it('locks out an address after 20 failures, its right key too; the right key from another address works', async () => {
    for (let i = 0; i < 20; i++)
      expect((await getFrom('127.0.0.2', UNKNOWN, `wrong-key-${i}-0123456789`)).status).toBe(401);
    const locked = await getFrom('127.0.0.2', UNKNOWN, 'wrong-key-x-0123456789');
    expect(locked.status).toBe(429);
    expect(ApiErrorBody.parse(JSON.parse(locked.body)).error.code).toBe('too_many_auth_failures');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    // The right key from the locked address: refused, so a guesser cannot tell a right guess.
    expect((await getFrom('127.0.0.2', UNKNOWN, KEY)).status).toBe(429);
    // The right key from another address: authenticated (404: no such task).
    expect((await getFrom('127.0.0.1', UNKNOWN, KEY)).status).toBe(404);
  });

  // 2,000 connections of their own: on a loaded 2-core machine they take longer than the default timeout.
  it('2,000 wrong keys from one address: 20 get 401, every other one 429, even when sent 20 at a time', {
    timeout: 120_000,
  }, async () => {
    const statuses: number[] = [];
    for (let batch = 0; batch < 100; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => getFrom('127.0.0.3', UNKNOWN, `guess-${batch}-${i}-0123456789`)),
      );
      statuses.push(...answers.map((a) => a.status));
    }
    expect(statuses).toHaveLength(2_000);
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(1_980);
  });

  it('a request without any Authorization is not a guess: it does not count', async () => {
    const req = () =>
      new Promise<number>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: api.port, path: UNKNOWN, localAddress: '127.0.0.4', agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
    for (let i = 0; i < 30; i++) expect(await req()).toBe(401);
    expect((await getFrom('127.0.0.4', UNKNOWN, KEY)).status).toBe(404);
  });
});

describe('API_RATE_LIMIT_PER_MIN, per key', () => {
  it('answers 429 rate_limited with Retry-After past the limit; another key is not affected', async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof getFrom>> | undefined;
    for (let i = 0; i < 31; i++) {
      last = await getFrom('127.0.0.5', UNKNOWN, OTHER_KEY);
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 30).every((s) => s === 404)).toBe(true);
    expect(last?.status).toBe(429);
    expect(ApiErrorBody.parse(JSON.parse(last!.body)).error).toMatchObject({
      code: 'rate_limited',
      details: { limitPerMinute: 30 },
    });
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    expect(last!.headers['ratelimit-remaining']).toBe('0');
    // The same address with another key: its own budget (it has used a few above).
    const other = await getFrom('127.0.0.5', UNKNOWN, KEY);
    expect(other.status).toBe(404);
    expect(Number(other.headers['ratelimit-remaining'])).toBeGreaterThan(0);
  });
});

describe('API_RATE_LIMIT_PER_MIN under concurrent requests', () => {
  const ownPrefix = testPrefix('apitest');
  const RATE_KEY = 'rate-key-concurrent-0123456789';
  let own: TestApi | undefined;
  afterAll(async () => {
    await own?.close();
    await cleanPrefix(ownPrefix);
  });

  it('counts every request of a burst: of 45 at once, 30 pass, each with its own remaining count, and 15 get 429', async () => {
    own = await startApi({ prefix: ownPrefix, env: { API_RATE_LIMIT_PER_MIN: '30', API_KEYS: `r:${RATE_KEY}` } });
    const answers = await Promise.all(
      Array.from({ length: 45 }, async () => {
        const res = await fetch(`${own!.url}${UNKNOWN}`, { headers: { authorization: `Bearer ${RATE_KEY}` } });
        await res.body?.cancel();
        return { status: res.status, remaining: Number(res.headers.get('ratelimit-remaining')) };
      }),
    );
    const passed = answers.filter((a) => a.status === 404);
    expect(passed).toHaveLength(30);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(15);
    expect(passed.map((a) => a.remaining).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });
});

describe('clientAddress', () => {
  it.each([
    ['127.0.0.2', '127.0.0.2'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
  ])('%s counts as %s (one host holds a whole IPv6 /64)', (ip, expected) => {
    expect(clientAddress({ ip, socket: {} } as unknown as Request)).toBe(expected);
  });
});
