import { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System, replayPrompt, requireServices } from '@research/testing';

let sys: System;

beforeAll(async () => {
  await requireServices();
  sys = new System();
  await sys.startApi();
  await sys.startWorker(`e2e-${sys.id}-1`);
});

afterAll(async () => {
  await sys?.close();
});

describe('API → queue → worker → sandbox → results', () => {
  it('completes a research task submitted over HTTP; todo.md and report.md are readable through the API', async () => {
    const id = await sys.submit({ prompt: 'Research current market conditions and investment opportunities' });
    const view = await sys.waitFinal(id);
    expect(view.status).toBe('completed');
    expect(view.progress.phase).toBe('done');
    expect(view.result?.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(['todo.md', 'report.md', 'analysis.py', 'results.json']),
    );

    const list = (await (await sys.request(`/v1/jobs/${id}/files`)).json()) as {
      files: { path: string; size: number }[];
    };
    expect(list.files.map((f) => f.path)).toContain('report.md');
    const todo = await (await sys.request(`/v1/jobs/${id}/files/todo.md`)).text();
    expect(todo).toMatch(/- \[x\]/);
    expect(todo).not.toMatch(/- \[ \]/);
    const report = await sys.request(`/v1/jobs/${id}/files/report.md`);
    expect(report.status).toBe(200);
    expect(await report.text()).toMatch(/# Market research report[\s\S]*Best performer/);

    // Its steps are completed child jobs of the task job.
    const agent = new Queue('agent', { connection: sys.redis, prefix: sys.prefix });
    const task = await agent.getJob(id);
    const deps = await task!.getDependencies({ processed: { count: 100 } });
    expect(Object.keys(deps.processed ?? {})).toHaveLength(view.steps.length);
    const steps = new Queue(`steps.e2e-${sys.id}-1`, { connection: sys.redis, prefix: sys.prefix });
    for (const s of view.steps)
      expect(await (await Job.fromId(steps, `${id}-${s.index}`))?.getState()).toBe('completed');
    await Promise.all([agent.close(), steps.close()]);
  });

  it('streams events in order over SSE, closes after the final status, and replays after Last-Event-ID', async () => {
    const id = await sys.submit({ prompt: replayPrompt(['echo one', 'echo two', 'echo three']) });
    const all = await sys.events(id);
    const types = all.map((e) => e.type);
    expect(types[0]).toBe('status');
    expect(all.at(-1)).toMatchObject({ type: 'status', data: { status: 'completed' } });
    const results = all
      .filter((e) => e.type === 'tool_result')
      .map((e) => (e.data as { outcome: { result: { stdout: string } } }).outcome.result.stdout.trim());
    expect(results).toEqual(['one', 'two', 'three']);
    // Stream ids only grow.
    const ids = all.map((e) => e.id);
    expect([...ids].sort((a, b) => cmp(a, b))).toEqual(ids);

    // Reconnect after the 4th event: exactly the rest, nothing twice.
    const rest = await sys.events(id, { lastEventId: all[3]!.id });
    expect(rest.map((e) => e.id)).toEqual(ids.slice(4));
  });

  it('cancels a running `sleep 300` within seconds', async () => {
    const id = await sys.submit({ prompt: replayPrompt(['sleep 300']) });
    await sys.waitFor(id, (v) => v.steps.some((s) => s.status === 'running'));
    const res = await sys.request(`/v1/jobs/${id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(202);
    const view = await sys.waitFinal(id, 20_000);
    expect(view.status).toBe('cancelled');
  });

  it('answers bad requests with 400/401/404/413 in the error shape, never a 5xx', async () => {
    const cases: [Promise<Response>, number][] = [
      [
        fetch(`${sys.apiUrl}/v1/jobs`, {
          method: 'POST',
          body: '{"prompt":"x"}',
          headers: { 'content-type': 'application/json' },
        }),
        401,
      ],
      [
        sys.request('/v1/jobs', { method: 'POST', body: '{"prompt":"x"}', headers: { authorization: 'Bearer nope' } }),
        401,
      ],
      [sys.request('/v1/jobs', { method: 'POST', body: '{"prompt":' }), 400],
      [sys.request('/v1/jobs', { method: 'POST', body: JSON.stringify({ prompt: 5 }) }), 400],
      [sys.request('/v1/jobs', { method: 'POST', body: JSON.stringify({ prompt: 'x', maxSteps: 'many' }) }), 400],
      [sys.request('/v1/jobs', { method: 'POST', body: JSON.stringify({ prompt: 'x'.repeat(2_000_000) }) }), 413],
      [sys.request('/v1/jobs/00000000-0000-0000-0000-000000000000'), 404],
      [sys.request('/v1/jobs/..%2F..%2Fetc'), 404],
      [sys.request('/v1/jobs/00000000-0000-0000-0000-000000000000/cancel', { method: 'POST' }), 404],
    ];
    for (const [pending, status] of cases) {
      const res = await pending;
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(typeof body.error.code).toBe('string');
      expect(body.error.message.length).toBeGreaterThan(0);
    }
  });
});

describe('more workers', () => {
  it('gives a second worker process its own container', async () => {
    const second = `e2e-${sys.id}-2`;
    await sys.startWorker(second);
    const workers = (await sys.redis.zrange(`${sys.prefix}:workers`, 0, -1)).sort();
    expect(workers).toEqual([`e2e-${sys.id}-1`, second].sort());
    const infos = await Promise.all(
      workers.map(
        async (w) => JSON.parse((await sys.redis.get(`${sys.prefix}:worker:${w}`)) ?? '{}') as { containerId: string },
      ),
    );
    expect(new Set(infos.map((i) => i.containerId)).size).toBe(2);
  });
});

function cmp(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am! - bm! || as! - bs!;
}
