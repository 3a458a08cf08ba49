import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiErrorBody, type TaskAccepted } from '@research/contracts';
import { QueuedQuota } from '@research/queue';
import { call, cleanPrefix, requireRedis, testPrefix } from '@research/testing';
import { startApi, type TestApi } from '../test/api.js';

const LIMIT = 3;
const prefix = testPrefix('apitest');
const KEYS = { a: 'quota-a-key-0123456789', b: 'quota-b-key-0123456789', c: 'quota-c-key-0123456789' };
const as = (key: string) => ({ authorization: `Bearer ${key}` });

let api: TestApi;
let quota: QueuedQuota;

beforeAll(async () => {
  await requireRedis();
  api = await startApi({
    prefix,
    env: {
      API_KEYS: `a:${KEYS.a},b:${KEYS.b},c:${KEYS.c},d:quota-d-key-0123456789,e:quota-e-key-0123456789,g:quota-g-key-0123456789`,
      TENANT_MAX_QUEUED: String(LIMIT),
    },
  });
  // The same accounting the API uses, to read the count.
  quota = new QueuedQuota(api.redis, api.prefix, LIMIT);
});

afterAll(async () => {
  await api?.close();
  await cleanPrefix(prefix);
});

const submit = (key: string, headers: Record<string, string> = {}) =>
  call(api.url, 'POST', '/v1/jobs', { headers: { ...as(key), ...headers }, body: { prompt: 'count me' } });

/** Submits until one is accepted (a full pass over the tenant's tasks runs at most once a second). */
async function submitUntilAccepted(key: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await submit(key);
    if (res.status === 202) return (res.json as TaskAccepted).id;
    expect(res.status).toBe(429);
    if (Date.now() > deadline) throw new Error('never admitted again');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('TENANT_MAX_QUEUED', () => {
  it('refuses the submit past the limit with 429 quota_exceeded naming the limit; other tenants go on', async () => {
    for (let i = 0; i < LIMIT; i++) expect((await submit(KEYS.a)).status).toBe(202);
    const refused = await submit(KEYS.a);
    expect(refused.status).toBe(429);
    const body = ApiErrorBody.parse(refused.json);
    expect(body.error.code).toBe('quota_exceeded');
    expect(body.error.message).toContain(`TENANT_MAX_QUEUED=${LIMIT}`);
    expect(body.error.details).toEqual({ limit: LIMIT, tenant: 'a' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await submit(KEYS.b)).status).toBe(202);
    expect(await quota.counted('a')).toBe(LIMIT);
  });

  it('concurrent submits cannot overshoot', async () => {
    const results = await Promise.all(Array.from({ length: 25 }, () => submit(KEYS.c)));
    expect(results.filter((r) => r.status === 202)).toHaveLength(LIMIT);
    expect(results.filter((r) => r.status === 429)).toHaveLength(25 - LIMIT);
    expect(await quota.counted('c')).toBe(LIMIT);
  });

  it('a repeat of an accepted submit (same Idempotency-Key) is answered at the limit, not refused', async () => {
    const key = 'quota-d-key-0123456789';
    const first = await submit(key, { 'idempotency-key': 'repeat-me' });
    for (let i = 1; i < LIMIT; i++) expect((await submit(key)).status).toBe(202);
    const again = await submit(key, { 'idempotency-key': 'repeat-me' });
    expect(again.status).toBe(202);
    expect(again.json.id).toBe(first.json.id);
    expect((await submit(key)).status).toBe(429);
  });

  it('a task stops counting once it starts, is cancelled, or its record expires', async () => {
    const key = 'quota-e-key-0123456789';
    const ids: string[] = [];
    for (let i = 0; i < LIMIT; i++) ids.push((await submit(key)).json.id);
    expect((await submit(key)).status).toBe(429);

    // Cancelled while queued: freed at once.
    expect((await call(api.url, 'POST', `/v1/jobs/${ids[0]}/cancel`, { headers: as(key) })).status).toBe(202);
    ids[0] = await submitUntilAccepted(key);
    expect((await submit(key)).status).toBe(429);

    // Started by a worker (the record says running): freed without the worker knowing of quotas.
    await api.store.lifecycle.start(ids[1]!, { workerId: 'worker-a' });
    ids[1] = await submitUntilAccepted(key);
    expect((await submit(key)).status).toBe(429);

    // Expired long ago: the record is gone.
    await api.redis.del(`${prefix}:task:${ids[2]!}`);
    await api.redis.zadd(`${prefix}:tenant:e:queued`, Date.now() - 3_600_000, ids[2]!);
    await submitUntilAccepted(key);
    expect((await submit(key)).status).toBe(429);
    expect(await quota.counted('e')).toBe(LIMIT);
  });

  it('a batch is admitted in order up to the limit, a repeat in it answered and not counted again', async () => {
    const key = 'quota-g-key-0123456789';
    const first = await submit(key, { 'idempotency-key': 'batch-repeat' });
    expect(first.status).toBe(202);
    const res = await call(api.url, 'POST', '/v1/jobs/batch', {
      headers: as(key),
      body: {
        tasks: [
          { prompt: 'count me', idempotencyKey: 'batch-repeat' },
          { prompt: 'second' },
          { prompt: 'third' },
          { prompt: 'one too many' },
        ],
      },
    });
    expect(res.status).toBe(200);
    const { results, accepted, refused } = res.json as {
      results: ({ id: string } | { error: { code: string } })[];
      accepted: number;
      refused: number;
    };
    expect({ accepted, refused }).toEqual({ accepted: 3, refused: 1 });
    expect(results[0]).toEqual({ id: (first.json as TaskAccepted).id });
    expect(results.slice(1, 3).every((r) => 'id' in r)).toBe(true);
    expect(results[3]).toMatchObject({ error: { code: 'quota_exceeded' } });
    expect(await quota.counted('g')).toBe(LIMIT);
  });

  it('a task that could not be queued is not counted', async () => {
    const failing = await startApi({
      prefix: testPrefix('apitest'),
      env: { API_KEYS: `f:${KEYS.a}`, TENANT_MAX_QUEUED: String(LIMIT) },
    });
    try {
      // Every add now fails inside BullMQ's script (WRONGTYPE on the wait list, and on the
      // prioritized set every task job goes to).
      await failing.redis.set(`${failing.prefix}:agent:wait`, 'not a list');
      await failing.redis.set(`${failing.prefix}:agent:prioritized`, 'not a set');
      const res = await call(failing.url, 'POST', '/v1/jobs', { headers: as(KEYS.a), body: { prompt: 'x' } });
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(await new QueuedQuota(failing.redis, failing.prefix, LIMIT).counted('f')).toBe(0);
    } finally {
      await failing.close();
      await cleanPrefix(failing.prefix);
    }
  });
});
