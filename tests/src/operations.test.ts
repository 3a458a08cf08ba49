import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchResult, TaskList, TaskView, UsageReport } from '@research/contracts';
import { System, eventually, replayPrompt, requireServices } from '@research/testing';
import { containerWith, rootExec } from './docker-exec.js';

const BETA = 'beta-operations-key-0123456789';
const beta = { authorization: `Bearer ${BETA}` };

let sys: System;

beforeAll(async () => {
  await requireServices();
  sys = new System({ tag: 'ops' });
  // Tenant acme is the kit's key (sys.request sends it); beta is another tenant.
  await sys.startApi({ API_KEYS: `acme:${sys.apiKey},beta:${BETA}` });
});

afterAll(async () => {
  await sys?.close();
});

async function json<T>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await sys.request(path, init);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** Every page of a list query, following nextCursor. */
async function listAll(query: string, limit: number, headers: Record<string, string> = {}) {
  const ids: string[] = [];
  let pages = 0;
  let cursor: string | null = null;
  do {
    const { status, body } = await json<TaskList>(
      `/v1/jobs?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { headers },
    );
    expect(status).toBe(200);
    const page = TaskList.parse(body);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    ids.push(...page.items.map((t) => t.id));
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== null);
  return { ids, pages };
}

describe('operating many tasks on the real stack', () => {
  const ran: { id: string; priority: number }[] = [];
  let workerId = '';

  it('a batch of 1,000 with one invalid item queues 999; unstarted within ttlSeconds, they end expired', async () => {
    const tasks: unknown[] = Array.from({ length: 1_000 }, (_, i) => ({
      prompt: `bulk ${i}`,
      tags: ['bulk'],
      ttlSeconds: 1,
    }));
    tasks[7] = { prompt: 'bad priority', priority: 99 };
    const { status, body } = await json<BatchResult>('/v1/jobs/batch', {
      method: 'POST',
      body: JSON.stringify({ tasks }),
    });
    expect(status).toBe(200);
    const result = BatchResult.parse(body);
    expect(result.accepted).toBe(999);
    expect(result.results[7]).toMatchObject({ error: { code: 'invalid_request' } });
    expect((result.results[7] as { error: { message: string } }).error.message).toContain('priority');
    const ids = result.results.flatMap((r) => ('id' in r ? [r.id] : []));
    expect(new Set(ids).size).toBe(999);

    // No worker runs yet: the API's expiry checks end them all.
    await eventually(
      'all 999 expired',
      async () => {
        const { ids: failed } = await listAll('tag=bulk&status=failed', 100);
        return failed.length === 999 ? true : undefined;
      },
      90_000,
      1_000,
    );
    const view = TaskView.parse((await json(`/v1/jobs/${ids[500]}`)).body);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('expired');
    expect(view.startedAt).toBeUndefined();
    expect((await listAll('tag=bulk&status=queued', 100)).ids).toEqual([]);
    expect((await listAll('tag=bulk', 100, beta)).ids).toEqual([]);
  });

  it('one worker runs queued tasks in priority order', async () => {
    for (const priority of [1, 10, 5]) {
      const id = await sys.submit({
        prompt: replayPrompt([`mkdir -p data && echo priority-${priority} > data/out.txt && sleep 0.2`]),
        priority,
        tags: ['prio'],
      });
      ran.push({ id, priority });
    }
    workerId = sys.newWorkerId();
    await sys.startWorker(workerId, { WORKER_CONCURRENCY: '1' });
    const views = await Promise.all(ran.map(({ id }) => sys.waitFinal(id)));
    for (const v of views) expect(v.status).toBe('completed');
    const order = views
      .map((v, i) => ({ priority: ran[i]!.priority, startedAt: Date.parse(v.startedAt!) }))
      .sort((a, b) => a.startedAt - b.startedAt)
      .map((v) => v.priority);
    expect(order).toEqual([10, 5, 1]);
  });

  it('lists by tag and status, page by page, for the caller tenant only', async () => {
    const { ids, pages } = await listAll('tag=prio&status=completed', 2);
    expect(pages).toBe(2);
    // Newest first: the reverse of the submit order.
    expect(ids).toEqual(ran.map((r) => r.id).reverse());
    expect((await listAll('tag=prio&status=queued', 2)).ids).toEqual([]);
    expect((await listAll('tag=prio', 2, beta)).ids).toEqual([]);
    expect((await json(`/v1/jobs/${ran[0]!.id}`, { headers: beta })).status).toBe(404);
  });

  it('an archive holds the files the task wrote', async () => {
    const { id, priority } = ran[1]!;
    const res = await sys.request(`/v1/jobs/${id}/archive`);
    expect(res.status).toBe(200);
    const tarball = gunzipSync(Buffer.from(await res.arrayBuffer()));
    expect(tarball.includes(Buffer.from(`research-${id}/data/out.txt`))).toBe(true);
    expect(tarball.includes(Buffer.from(`priority-${priority}\n`))).toBe(true);
    expect((await sys.request(`/v1/jobs/${id}/archive`, { headers: beta })).status).toBe(404);
  });

  it('usage sums match what ran', async () => {
    const views = await Promise.all(ran.map(({ id }) => sys.view(id)));
    const total = { modelCalls: 0, steps: 0, commandMs: 0, promptTokens: 0, completionTokens: 0, fetchedBytes: 0 };
    for (const v of views) {
      expect(v.usage).toBeDefined();
      const u = v.usage!;
      // One command each, then the answer: two model turns (the offline model reports no tokens).
      expect(u.steps).toBe(v.steps.length);
      expect(u.steps).toBe(1);
      expect(u.modelCalls).toBe(2);
      expect(u.commandMs).toBeGreaterThan(0);
      for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += u[k];
    }
    const report = UsageReport.parse((await json('/v1/usage')).body);
    expect(report.tenant).toBe('acme');
    // The expired tasks used nothing: the tenant's sums are these three tasks'.
    expect(report.usage).toEqual(total);
    const other = UsageReport.parse((await json('/v1/usage', { headers: beta })).body);
    expect(other.usage.steps).toBe(0);
  });

  it('a deleted task answers 404 everywhere and leaves the lists; its usage stays counted; its workspace goes', async () => {
    const { id } = ran[0]!;
    const container = await containerWith(`research.worker=${workerId}`);
    const workspaces = async () => (await rootExec(container, 'ls -a /workspace')).split('\n');
    expect(await workspaces()).toContain(id);
    expect((await sys.request(`/v1/jobs/${id}`, { method: 'DELETE' })).status).toBe(204);
    for (const [method, path] of [
      ['GET', ''],
      ['GET', '/events'],
      ['GET', '/files'],
      ['GET', '/files/data/out.txt'],
      ['GET', '/archive'],
      ['POST', '/cancel'],
      ['DELETE', ''],
    ] as const) {
      const res = await sys.request(`/v1/jobs/${id}${path}`, { method });
      await res.body?.cancel();
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    expect((await listAll('tag=prio', 10)).ids).toEqual(
      ran
        .slice(1)
        .map((r) => r.id)
        .reverse(),
    );
    expect(UsageReport.parse((await json('/v1/usage')).body).usage.steps).toBe(3);
    // The worker that ran it removes its directory in the sandbox; the others' stay.
    await eventually('the workspace removed', async () => ((await workspaces()).includes(id) ? undefined : true));
    expect(await workspaces()).toEqual(expect.arrayContaining(ran.slice(1).map((r) => r.id)));
  });

  it('a running task is not deleted: 409 naming cancel; cancelled, it can be', async () => {
    const id = await sys.submit({ prompt: replayPrompt(['sleep 60']) });
    await sys.waitFor(id, (v) => v.status === 'running');
    const refused = await json<{ error: { code: string; message: string } }>(`/v1/jobs/${id}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('not_finished');
    expect(refused.body.error.message).toContain('cancel');
    expect(TaskView.parse((await json(`/v1/jobs/${id}`)).body).status).toBe('running');
    expect((await sys.request(`/v1/jobs/${id}/cancel`, { method: 'POST' })).status).toBe(202);
    expect((await sys.waitFinal(id)).status).toBe('cancelled');
    expect((await sys.request(`/v1/jobs/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await sys.request(`/v1/jobs/${id}`)).status).toBe(404);
  });
});
