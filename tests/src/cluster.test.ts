import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, isCluster } from '@research/queue';
import { RedisCluster } from './redis-cluster.js';
import { System, replayPrompt, requireServices, sleep } from '@research/testing';

/**
 * The whole system on a three-master Redis Cluster of its own (loopback child processes), with
 * REDIS_CLUSTER=true. REDIS_URL names a master that does NOT own the slot of the queue prefix,
 * so a process on a single-endpoint client would get MOVED for every key: a task that
 * completes shows every process talks Cluster.
 */
let cluster: RedisCluster | undefined;
let sys: System | undefined;
let seed = '';
let workerId = '';

beforeAll(async () => {
  RedisCluster.requireBinaries();
  cluster = new RedisCluster();
  await cluster.start(3);
  const first = cluster.urlOf(cluster.ports[0]!);
  await requireServices(first);
  sys = new System({ redisUrl: first, env: { REDIS_CLUSTER: 'true' } });
  const owner = await cluster.ownerOf(`${sys.prefix}:agent:meta`);
  seed = cluster.ports.map((p) => cluster!.urlOf(p)).find((u) => u !== owner)!;
  workerId = `cluster-${sys.id}`;
  await sys.startApi({ REDIS_URL: seed });
  await sys.startWorker(workerId, { REDIS_URL: seed });
});

afterAll(async () => {
  await sys?.close();
  await cluster?.close();
});

describe('on a Redis Cluster (REDIS_CLUSTER=true)', () => {
  it('REDIS_URL is a seed that does not hold the keys: a single-endpoint client is redirected', async () => {
    expect(isCluster(sys!.redis)).toBe(true);
    const single = createRedis(seed, 'worker');
    try {
      await expect(single.get(`${sys!.prefix}:stats`)).rejects.toThrow(/MOVED/);
    } finally {
      single.disconnect();
    }
  });

  it('completes a research task submitted over HTTP; report.md is readable through the API', async () => {
    const s = sys!;
    const id = await s.submit({ prompt: 'Research current market conditions and investment opportunities' });
    const view = await s.waitFinal(id);
    expect(view).toMatchObject({ status: 'completed', workerId, progress: { phase: 'done' } });
    expect(view.result?.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(['todo.md', 'report.md', 'analysis.py', 'results.json']),
    );
    const report = await s.request(`/v1/jobs/${id}/files/report.md`);
    expect(report.status).toBe(200);
    expect(await report.text()).toMatch(/# Market research report[\s\S]*Best performer/);
  });

  it('streams SSE events live while the task runs, and replays them after Last-Event-ID', async () => {
    const s = sys!;
    const id = await s.submit({ prompt: replayPrompt(['echo one', 'sleep 2', 'echo two']) });
    const openedAt = Date.now();
    const all = await s.events(id);
    expect(all[0]).toMatchObject({ type: 'status', data: { status: 'queued' } });
    expect(all.at(-1)).toMatchObject({ type: 'status', data: { status: 'completed' } });
    const stdout = all
      .filter((e) => e.type === 'tool_result')
      .map((e) => (e.data as { outcome: { result: { stdout: string } } }).outcome.result.stdout.trim());
    expect(stdout).toEqual(['one', '', 'two']);
    // Stream ids start with Redis's clock: the final event was written after the stream opened,
    // so it came through the live (XREAD BLOCK) path, not the replay.
    expect(Number(all.at(-1)!.id.split('-')[0])).toBeGreaterThan(openedAt);

    const rest = await s.events(id, { lastEventId: all[1]!.id });
    expect(rest.map((e) => e.id)).toEqual(all.slice(2).map((e) => e.id));
  });

  it("the dashboard lists the agent queue and the worker's step queue", async () => {
    const s = sys!;
    await s.startDashboard({ REDIS_URL: seed, DASHBOARD_READONLY_LOOPBACK: 'true' });
    const want = ['agent', `steps.${workerId}`];
    let names: string[] = [];
    for (const until = Date.now() + 15_000; Date.now() < until; await sleep(250)) {
      const res = await fetch(`${s.dashboardUrl}/api/queues`);
      if (res.ok) names = ((await res.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
      if (want.every((n) => names.includes(n))) break;
    }
    expect(names).toEqual(expect.arrayContaining(want));
  });
});
