import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System, replayPrompt, requireServices, type Spawned } from '@research/testing';

// SANDBOX_ISOLATION=task: a fresh container and volume per task, from a warm pool, removed after.
let sys: System;
let first: Spawned;
const docker = new Docker();
const fast = {
  SANDBOX_ISOLATION: 'task',
  SANDBOX_POOL_SIZE: '1',
  WORKER_LOCK_MS: '3000',
  WORKER_STALLED_INTERVAL_MS: '1000',
};

beforeAll(async () => {
  await requireServices();
  sys = new System();
  await sys.startApi();
});

afterAll(async () => {
  await sys?.close();
});

async function stdoutOf(id: string, step: number): Promise<string> {
  const events = await sys.events(id);
  const result = events.find((e) => e.type === 'tool_result' && (e.data as { step: number }).step === step);
  const data = result?.data as { outcome: { ok: boolean; result?: { stdout: string; exitCode: number } } } | undefined;
  return data?.outcome.result?.stdout ?? '';
}

describe('SANDBOX_ISOLATION=task', () => {
  it('runs the research task in a container of its own and removes it afterwards', async () => {
    const worker = `iso-${sys.id}-1`;
    first = await sys.startWorker(worker, fast);
    const id = await sys.submit({ prompt: 'Research current market conditions and investment opportunities' });
    const view = await sys.waitFinal(id);
    expect(view.status).toBe('completed');
    expect(await (await sys.request(`/v1/jobs/${id}/files/report.md`)).text()).toMatch(/Best performer/);
    const slot = await sys.redis.hget(`${sys.prefix}:task:${id}`, 'sandboxSlot');
    expect(slot).toBeTruthy();
    // The container and volume go right after the final status is set (the status does not wait for them).
    await expect
      .poll(
        async () => (await docker.listContainers({ all: true, filters: { label: [`research.slot=${slot}`] } })).length,
        { timeout: 20_000 },
      )
      .toBe(0);
    await expect
      .poll(
        async () => ((await docker.listVolumes({ filters: { name: [`research-slot-${slot}`] } })).Volumes ?? []).length,
        { timeout: 20_000 },
      )
      .toBe(0);
    // The pool refills in the background: one warm container comes to wait for the next task.
    await expect
      .poll(
        async () => (await docker.listContainers({ filters: { label: [`research.pool-owner=${worker}`] } })).length,
        { timeout: 30_000 },
      )
      .toBeGreaterThanOrEqual(1);
  });

  it('keeps tasks apart: no shared files, processes or host name', async () => {
    const a = await sys.submit({ prompt: replayPrompt(['echo secret-of-a > secret.txt; hostname; sleep 3']) });
    await sys.waitFor(a, (v) => v.steps.some((s) => s.status === 'running'));
    const b = await sys.submit({
      prompt: replayPrompt([
        `ls /workspace; hostname; ps -eo args | grep -c "^sleep 3" || true`,
        `cat /workspace/${a}/secret.txt`,
      ]),
    });
    const [va, vb] = await Promise.all([sys.waitFinal(a), sys.waitFinal(b)]);
    expect(va.status).toBe('completed');
    expect(vb.status).toBe('completed');
    const [bLines, aLines] = [(await stdoutOf(b, 0)).trim().split('\n'), (await stdoutOf(a, 0)).trim().split('\n')];
    expect(bLines[0]).toBe(b);
    expect(bLines[1]).not.toBe(aLines[0]);
    expect(bLines[2]).toBe('0');
    expect(vb.steps[1]?.exitCode).not.toBe(0);
  });

  it('resumes a task on another worker after kill -9, with the files of its own volume', async () => {
    // Only the victim may take the task.
    await sys.stop(first, 'SIGTERM');
    const victim = await sys.startWorker(`iso-${sys.id}-victim`, { ...fast, WORKER_CONCURRENCY: '1' });
    const id = await sys.submit({
      prompt: replayPrompt(['echo from-before > before.txt', 'sleep 3', 'cat before.txt']),
    });
    await sys.waitFor(id, (v) => v.steps.some((s) => s.index === 1 && s.status === 'running'));
    await sys.stop(victim, 'SIGKILL');
    await sys.startWorker(`iso-${sys.id}-rescuer`, fast);
    const view = await sys.waitFinal(id);
    expect(view.status).toBe('completed');
    expect(view.workerId).toBe(`iso-${sys.id}-rescuer`);
    // The file written on the dead worker was still there: the task kept its own volume.
    expect((await stdoutOf(id, 2)).trim()).toBe('from-before');
  });
});
