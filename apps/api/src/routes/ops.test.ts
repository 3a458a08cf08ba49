import { gunzipSync } from 'node:zlib';
import { Queue } from 'bullmq';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@research/config';
import { BatchResult, TaskList, TaskView, UsageReport } from '@research/contracts';
import { EXPIRY_QUEUE, QueuedQuota, createRedis } from '@research/queue';
import { call, eventually } from '@research/testing';
import { AUTH, OTHER_KEY, useApi } from '../../test/api.js';
import { ExpirySweeper } from '../expiry.js';

const api = useApi({ env: { MAX_BATCH_BODY_BYTES: String(1024 * 1024) } });
const OTHER = { authorization: `Bearer ${OTHER_KEY}` };

const submit = async (body: Record<string, unknown>, headers = AUTH): Promise<string> => {
  const res = await call(api.url, 'POST', '/v1/jobs', { headers, body });
  expect(res.status).toBe(202);
  return res.json.id as string;
};
const list = async (query: string, headers = AUTH) => {
  const res = await call(api.url, 'GET', `/v1/jobs?${query}`, { headers });
  expect(res.status).toBe(200);
  return TaskList.parse(res.json);
};
/** Runs a task to its end the way a worker does: the guarded transitions. */
const finish = async (id: string, to: 'completed' | 'failed' = 'completed') => {
  expect((await api.store.lifecycle.start(id, { workerId: 'w-ops-test' })).ok).toBe(true);
  const ended = await api.store.lifecycle.transition(
    id,
    to,
    to === 'completed' ? { result: { summary: 'done', files: [] } } : { error: { code: 'internal', message: 'x' } },
  );
  expect(ended.ok).toBe(true);
};

describe('GET /v1/jobs', () => {
  it('lists by tag and status, newest first, page by page, and only the caller tenant', async () => {
    const tag = `t-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submit({ prompt: `listed ${i}`, tags: [tag, 'shared'] }));
    await submit({ prompt: 'untagged' });
    await submit({ prompt: 'other tenant', tags: [tag] }, OTHER);
    await finish(ids[1]!);
    await finish(ids[3]!);

    const all = await list(`tag=${tag}&limit=100`);
    expect(all.items.map((t) => t.id)).toEqual([...ids].reverse());
    expect(all.nextCursor).toBeNull();
    expect(all.items[0]).toMatchObject({ status: 'queued', tags: [tag, 'shared'], promptPreview: 'listed 4' });

    // Paging: two at a time, cursor from the page before.
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: TaskList = await list(`tag=${tag}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((t) => t.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null);
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBe(3);

    const done = await list(`tag=${tag}&status=completed`);
    expect(done.items.map((t) => t.id)).toEqual([ids[3], ids[1]]);
    const queued = await list(`tag=${tag}&status=queued&limit=2`);
    expect(queued.items.map((t) => t.id)).toEqual([ids[4], ids[2]]);
    expect((await list(`tag=${tag}&status=queued&limit=2&cursor=${queued.nextCursor}`)).items.map((t) => t.id)).toEqual(
      [ids[0]],
    );

    // The other tenant sees its own task only.
    const theirs = await list(`tag=${tag}`, OTHER);
    expect(theirs.items).toHaveLength(1);
    expect(theirs.items[0]?.tenant).toBe('other');
  });

  it('filters by creation time', async () => {
    const tag = `time-${Date.now()}`;
    const first = await submit({ prompt: 'early', tags: [tag] });
    const firstAt = (await api.store.records.view(first))!.createdAt;
    await new Promise((r) => setTimeout(r, 5));
    const second = await submit({ prompt: 'late', tags: [tag] });
    expect((await list(`tag=${tag}&createdAfter=${firstAt}`)).items.map((t) => t.id)).toEqual([second]);
    expect(
      (await list(`tag=${tag}&createdBefore=${new Date(Date.parse(firstAt) + 1).toISOString()}`)).items.map(
        (t) => t.id,
      ),
    ).toEqual([first]);
  });

  it('refuses bad parameters with a 400 naming them', async () => {
    for (const [query, name] of [
      ['limit=101', 'limit'],
      ['limit=0', 'limit'],
      ['status=done', 'status'],
      ['tag=has%20space', 'tag'],
      ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
      ['createdAfter=yesterday', 'createdAfter'],
      ['tenant=other', 'tenant'],
      ['limit=1&limit=2', 'limit'],
      ['color=red', 'color'],
    ] as const) {
      const res = await call(api.url, 'GET', `/v1/jobs?${query}`, { headers: AUTH });
      expect(res.status, query).toBe(400);
      expect(res.json.error.message, query).toContain(name);
    }
  });

  it('refuses more than 10 tags, repeated tags and bad ones at submit', async () => {
    for (const tags of [Array.from({ length: 11 }, (_, i) => `t${i}`), ['a', 'a'], ['no spaces']]) {
      const res = await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'x', tags } });
      expect(res.status).toBe(400);
      expect(res.json.error.message).toContain('tags');
    }
  });
});

describe('POST /v1/jobs/batch', () => {
  it('queues 999 of 1,000 tasks around one invalid item, in one answer in order', async () => {
    const tag = `batch-${Date.now()}`;
    const tasks: unknown[] = Array.from({ length: 1_000 }, (_, i) => ({ prompt: `batch item ${i}`, tags: [tag] }));
    tasks[500] = { prompt: '', tags: [tag] };
    const res = await call(api.url, 'POST', '/v1/jobs/batch', { headers: AUTH, body: { tasks } });
    expect(res.status).toBe(200);
    const body = BatchResult.parse(res.json);
    expect(body.results).toHaveLength(1_000);
    expect(body.accepted).toBe(999);
    expect(body.refused).toBe(1);
    const bad = body.results[500]!;
    expect('error' in bad && bad.error.code).toBe('invalid_request');
    expect('error' in bad && bad.error.message).toContain('prompt');
    const ids = body.results.flatMap((r) => ('id' in r ? [r.id] : []));
    expect(new Set(ids).size).toBe(999);
    // Each id is a queued task with its job.
    expect((await api.store.records.view(ids[0]!))?.status).toBe('queued');
    expect((await api.queue.getJob(ids[998]!))?.data.request.prompt).toBe('batch item 999');
    let listed = 0;
    let cursor: string | null = null;
    do {
      const page: TaskList = await list(`tag=${tag}&limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      listed += page.items.length;
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(listed).toBe(999);
  });

  it('gives each item its own idempotency key', async () => {
    const key = `item-${Date.now()}`;
    const first = BatchResult.parse(
      (
        await call(api.url, 'POST', '/v1/jobs/batch', {
          headers: AUTH,
          body: { tasks: [{ prompt: 'a', idempotencyKey: key }, { prompt: 'b' }] },
        })
      ).json,
    );
    const again = BatchResult.parse(
      (
        await call(api.url, 'POST', '/v1/jobs/batch', {
          headers: AUTH,
          body: {
            tasks: [
              { prompt: 'a', idempotencyKey: key },
              { prompt: 'c', idempotencyKey: key },
            ],
          },
        })
      ).json,
    );
    const id = (r: BatchResult['results'][number] | undefined) => (r && 'id' in r ? r.id : undefined);
    expect(id(again.results[0])).toBe(id(first.results[0]));
    expect(again.results[1]).toMatchObject({ error: { code: 'idempotency_key_reused' } });
  });

  it('refuses what is not a batch', async () => {
    for (const body of [{}, { tasks: [] }, { tasks: Array.from({ length: 1_001 }, () => ({ prompt: 'x' })) }]) {
      const res = await call(api.url, 'POST', '/v1/jobs/batch', { headers: AUTH, body });
      expect(res.status).toBe(400);
      expect(res.json.error.message).toContain('tasks');
    }
    const notObject = await call(api.url, 'POST', '/v1/jobs/batch', { headers: AUTH, body: [] });
    expect(notObject.status).toBe(400);
    expect(notObject.json.error.message).toContain('expected object');
  });
});

describe('priority and ttlSeconds', () => {
  it('maps priority to BullMQ priorities, higher first', async () => {
    const low = await submit({ prompt: 'low', priority: 1 });
    const mid = await submit({ prompt: 'mid' });
    const high = await submit({ prompt: 'high', priority: 10 });
    const p = async (id: string) => (await api.queue.getJob(id))?.opts.priority;
    expect(await p(high)).toBeLessThan((await p(mid))!);
    expect(await p(mid)).toBeLessThan((await p(low))!);
    for (const priority of [0, 11, 2.5]) {
      const res = await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'x', priority } });
      expect(res.status).toBe(400);
      expect(res.json.error.message).toContain('priority');
    }
  });

  it('fails a task not started within its ttlSeconds as expired, and takes its job out', async () => {
    const connection = createRedis(api.env.REDIS_URL, 'worker');
    const expiryQueue = new Queue(EXPIRY_QUEUE, { connection: api.redis, prefix: api.prefix });
    const sweeper = new ExpirySweeper({
      connection,
      prefix: api.prefix,
      store: api.store,
      queue: api.queue,
      quota: new QueuedQuota(api.redis, api.prefix, 0),
      logger: createLogger({ level: 'silent', pretty: false }),
    });
    try {
      const id = await submit({ prompt: 'never started', ttlSeconds: 1 });
      const kept = await submit({ prompt: 'no ttl' });
      const view = await eventually(
        'the task expired',
        async () => {
          const v = TaskView.parse((await call(api.url, 'GET', `/v1/jobs/${id}`, { headers: AUTH })).json);
          return v.status === 'failed' ? v : undefined;
        },
        15_000,
      );
      expect(view.error?.code).toBe('expired');
      expect(view.error?.message).toContain('ttlSeconds=1');
      expect(await api.queue.getJob(id)).toBeUndefined();
      expect((await api.store.records.view(kept))?.status).toBe('queued');
      expect((await list('status=failed&limit=100')).items.map((t) => t.id)).toContain(id);
    } finally {
      await sweeper.close();
      await expiryQueue.close();
      connection.disconnect();
    }
  });
});

describe('DELETE /v1/jobs/:id and the archive', () => {
  it('streams a .tar.gz of the kept files', async () => {
    const id = await submit({ prompt: 'archive me' });
    await api.store.files.save(id, [
      { path: 'report.md', size: 7, content: Buffer.from('# hello') },
      { path: 'data/prices.csv', size: 6, content: Buffer.from('a,b\n1,') },
      { path: 'big.bin', size: 1e9 },
    ]);
    await finish(id);
    const res = await fetch(`${api.url}/v1/jobs/${id}/archive`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    expect(res.headers.get('x-archive-omitted-files')).toBe('1');
    const entries = await untar(gunzipSync(Buffer.from(await res.arrayBuffer())));
    expect(entries).toEqual({ [`research-${id}/report.md`]: '# hello', [`research-${id}/data/prices.csv`]: 'a,b\n1,' });
    expect((await call(api.url, 'GET', `/v1/jobs/${id}/archive`, { headers: OTHER })).status).toBe(404);
  });

  it('deletes a finished task: 404 on every route, gone from lists; a queued one answers 409 naming cancel', async () => {
    const tag = `del-${Date.now()}`;
    const id = await submit({ prompt: 'delete me', tags: [tag] }, AUTH);
    const queued = await call(api.url, 'DELETE', `/v1/jobs/${id}`, { headers: AUTH });
    expect(queued.status).toBe(409);
    expect(queued.json.error.message).toContain('cancel');
    expect((await call(api.url, 'DELETE', `/v1/jobs/${id}`, { headers: OTHER })).status).toBe(404);

    await api.store.files.save(id, [{ path: 'a.txt', size: 1, content: Buffer.from('a') }]);
    await finish(id, 'failed');
    expect((await call(api.url, 'DELETE', `/v1/jobs/${id}`, { headers: AUTH })).status).toBe(204);
    for (const [method, path] of [
      ['GET', ''],
      ['GET', '/events'],
      ['GET', '/files'],
      ['GET', '/files/a.txt'],
      ['GET', '/archive'],
      ['POST', '/cancel'],
      ['DELETE', ''],
    ] as const) {
      const res = await call(api.url, method, `/v1/jobs/${id}${path}`, { headers: AUTH });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect((await list(`tag=${tag}`)).items).toEqual([]);
    expect(await api.queue.getJob(id)).toBeUndefined();
    const left = await api.redis.keys(`${api.prefix}:task:${id}*`);
    expect(left).toEqual([]);
  });
});

describe('usage', () => {
  it('shows usage per task and sums the tenant per day; others see none of it', async () => {
    const before = UsageReport.parse((await call(api.url, 'GET', '/v1/usage', { headers: OTHER })).json);
    const id = await submit({ prompt: 'count me' }, OTHER);
    await api.store.usage.recordModel(id, { modelCalls: 2, promptTokens: 100, completionTokens: 30 });
    await api.store.usage.recordStep(id, 0, { commandMs: 250, fetchedBytes: 0 });
    await api.store.usage.recordStep(id, 1, { commandMs: 0, fetchedBytes: 4096 });
    // Reported again (a resumed run): counted once.
    await api.store.usage.recordStep(id, 1, { commandMs: 0, fetchedBytes: 4096 });
    await api.store.usage.recordModel(id, { modelCalls: 3, promptTokens: 150, completionTokens: 40 });

    const view = TaskView.parse((await call(api.url, 'GET', `/v1/jobs/${id}`, { headers: OTHER })).json);
    const expected = {
      modelCalls: 3,
      promptTokens: 150,
      completionTokens: 40,
      steps: 2,
      commandMs: 250,
      fetchedBytes: 4096,
    };
    expect(view.usage).toEqual(expected);
    const after = UsageReport.parse((await call(api.url, 'GET', '/v1/usage', { headers: OTHER })).json);
    expect(after.tenant).toBe('other');
    for (const [k, v] of Object.entries(expected)) {
      expect(after.usage[k as keyof typeof expected] - before.usage[k as keyof typeof expected], k).toBe(v);
    }
    expect(after.days).toHaveLength(30);
    const mine = UsageReport.parse((await call(api.url, 'GET', '/v1/usage', { headers: AUTH })).json);
    expect(mine.tenant).toBe('default');
    expect(mine.usage.fetchedBytes).toBe(0);

    for (const q of ['from=2026-13-01', 'from=2026-05-02&to=2026-05-01', 'from=2020-01-01&to=2026-01-01']) {
      const res = await call(api.url, 'GET', `/v1/usage?${q}`, { headers: AUTH });
      expect(res.status, q).toBe(400);
    }
  });

  it('counts by tenant in /metrics', async () => {
    const res = await call(api.url, 'GET', '/metrics');
    expect(res.text).toMatch(/research_tenant_tasks_submitted_total\{tenant="other"\} [1-9]/);
    expect(res.text).toMatch(/research_tenant_fetched_bytes_total\{tenant="other"\} [1-9]/);
  });
});

async function untar(buffer: Buffer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        out[header.name] = Buffer.concat(chunks).toString('utf8');
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(buffer);
  await done;
  return out;
}
