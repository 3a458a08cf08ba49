import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type Redis } from '@research/queue';
import { replayPrompt } from './prompts.js';
import { REDIS_URL, requireServices } from './services.js';
import { System } from './system.js';

const docker = new Docker();
let redis: Redis;

beforeAll(async () => {
  await requireServices();
  redis = createRedis(REDIS_URL, 'worker');
});

afterAll(async () => {
  await redis?.quit();
});

const containersOf = (workerId: string) =>
  docker.listContainers({ all: true, filters: { label: [`research.worker=${workerId}`] } });

async function keysUnder(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

describe('System', () => {
  it('runs a task through the API, a worker and its container; close() leaves no process, container, volume or key', async () => {
    const sys = new System({ tag: 'kit' });
    try {
      const api = await sys.startApi();
      const [worker] = await sys.startWorkers(1);
      const dashboard = await sys.startDashboard({ DASHBOARD_USER: 'kit', DASHBOARD_PASSWORD: 'kit-password' });
      expect(worker?.name).toBe(`kit-${sys.id}-w1`);
      expect((await fetch(`${sys.dashboardUrl}/`)).status).toBe(401);

      const id = await sys.submit({ prompt: replayPrompt(['echo from-the-kit']) });
      const { events } = await sys.follow(id);
      expect(events.at(-1)).toMatchObject({ type: 'status', data: { status: 'completed' } });
      const output = events.find((e) => e.type === 'tool_result')?.data as { outcome: { result: { stdout: string } } };
      expect(output.outcome.result.stdout).toBe('from-the-kit\n');
      expect((await sys.waitFinal(id)).workerId).toBe(worker?.name);

      expect(await containersOf(worker!.name)).toHaveLength(1);
      await expect(docker.getVolume(sys.volume).inspect()).resolves.toMatchObject({ Name: sys.volume });
      expect((await keysUnder(sys.prefix)).length).toBeGreaterThan(0);

      await sys.close();
      expect([api.exited, worker!.exited, dashboard.exited]).toEqual([true, true, true]);
      expect(await containersOf(worker!.name)).toEqual([]);
      await expect(docker.getVolume(sys.volume).inspect()).rejects.toThrow(/no such volume/i);
      expect(await keysUnder(sys.prefix)).toEqual([]);
    } finally {
      await sys.close();
    }
  });

  it('enqueues tasks without an API, as the API would, for a worker to run', async () => {
    const sys = new System({ tag: 'kit' });
    try {
      await sys.startWorkers(1, { WORKER_CONCURRENCY: '2' });
      const ids = await sys.enqueue([{ prompt: replayPrompt(['true']) }, { prompt: replayPrompt(['exit 3']) }]);
      expect(ids).toEqual([`t-${sys.id}-1`, `t-${sys.id}-2`]);
      for (const id of ids)
        await expect
          .poll(async () => (await sys.store.records.view(id))?.status, { timeout: 60_000, interval: 200 })
          .toBe('completed');
      const steps = await Promise.all(ids.map(async (id) => (await sys.store.records.view(id))?.steps[0]?.exitCode));
      expect(steps).toEqual([0, 3]);
    } finally {
      await sys.close();
    }
  });
});
