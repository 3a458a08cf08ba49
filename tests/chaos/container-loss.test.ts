import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System, replayPrompt, requireServices, sleep } from '@research/testing';
import { summary } from './support.js';

let sys: System;
let workerId: string;
const docker = new Docker();

beforeAll(async () => {
  await requireServices();
  sys = new System();
  workerId = `closs-${sys.id}`;
  await sys.startApi();
  await sys.startWorker(workerId, { WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000' });
});

afterAll(async () => {
  await sys?.close();
});

async function sandboxContainer(): Promise<Docker.ContainerInfo> {
  const list = await docker.listContainers({ all: true, filters: { label: [`research.worker=${workerId}`] } });
  const running = list.find((c) => c.State === 'running');
  if (!running)
    throw new Error(`no running sandbox container for ${workerId}: ${JSON.stringify(list.map((c) => c.State))}`);
  return running;
}

/** The sandbox container once the step's `sleep 2` is really running in it (not while it starts). */
async function containerRunningSleep(): Promise<Docker.ContainerInfo> {
  for (const until = Date.now() + 60_000; Date.now() < until; await sleep(100)) {
    const c = await sandboxContainer().catch(() => undefined);
    if (!c) continue;
    const top = await docker
      .getContainer(c.Id)
      .top({ ps_args: '-eo pid,args' })
      .catch(() => undefined);
    const processes = (top as { Processes?: string[][] } | undefined)?.Processes ?? [];
    if (processes.some((p) => p.some((field) => /^sleep 2$/.test(field)))) return c;
  }
  throw new Error('the step never ran its command');
}

async function restarts(): Promise<number> {
  return Number((await sys.redis.hget(`${sys.prefix}:stats`, 'containerRestarts')) ?? 0);
}

describe.each([
  ['docker kill', (c: Docker.Container) => c.kill()],
  ['docker rm -f', (c: Docker.Container) => c.remove({ force: true })],
] as const)('%s of the sandbox container mid-step', (fault, inject) => {
  it('retries the step on a re-created container; the task completes with its earlier files', async () => {
    const before = await sandboxContainer();
    const restartsBefore = await restarts();
    const id = await sys.submit({
      prompt: replayPrompt([
        'echo kept > before.txt',
        'sleep 2 && echo slept > during.txt',
        'cat before.txt during.txt',
      ]),
    });
    // Step 1 is the `sleep 2`; hit the container while it sleeps.
    await sys.waitFor(id, (v) => v.steps.some((s) => s.index === 1 && s.status === 'running'));
    await inject(docker.getContainer((await containerRunningSleep()).Id));

    const view = await sys.waitFinal(id);
    expect(view.status, JSON.stringify(view)).toBe('completed');
    const sleepStep = view.steps.find((s) => s.index === 1)!;
    expect(sleepStep.attempts).toBeGreaterThanOrEqual(2);
    expect(sleepStep.exitCode).toBe(0);
    // The workspace lives on the volume: what step 0 wrote survived the container.
    const events = await sys.events(id);
    const last = events.filter((e) => e.type === 'tool_result').at(-1)?.data as {
      outcome: { ok: boolean; result: { stdout: string } };
    };
    expect(last.outcome.result.stdout).toBe('kept\nslept\n');
    const after = await sandboxContainer();
    if (fault === 'docker rm -f') expect(after.Id).not.toBe(before.Id);
    else expect(after.Id).toBe(before.Id);
    const counted = (await restarts()) - restartsBefore;
    expect(counted).toBeGreaterThanOrEqual(1);
    summary(`container-loss (${fault})`, {
      faults: 1,
      tasks: 1,
      lost: view.status === 'completed' ? 0 : 1,
      stepAttempts: sleepStep.attempts,
      containerRestartsCounted: counted,
    });
  });
});

describe('the sandbox container killed at every attempt of one step', () => {
  it('exhausts the step, then the task retries from its checkpoint and completes', async () => {
    const id = await sys.submit({
      prompt: replayPrompt(['echo kept > before.txt', 'sleep 2 && echo slept', 'cat before.txt']),
    });
    let kills = 0;
    // Steps get 3 attempts: kill the container during each.
    for (let attempt = 1; attempt <= 3; attempt++) {
      await sys.waitFor(id, (v) =>
        v.steps.some((s) => s.index === 1 && s.status === 'running' && s.attempts >= attempt),
      );
      await docker.getContainer((await containerRunningSleep()).Id).kill();
      kills++;
    }
    const view = await sys.waitFinal(id);
    expect(view.status, JSON.stringify(view)).toBe('completed');
    const events = await sys.events(id);
    const results = events
      .filter((e) => e.type === 'tool_result')
      .map((e) => e.data as { step: number; outcome: { ok: boolean; result: { stdout: string } } });
    expect(results.find((r) => r.step === 1)?.outcome.result.stdout).toBe('slept\n');
    expect(results.at(-1)?.outcome.result.stdout).toBe('kept\n');
    // The task's own job was retried once the step had no attempts left.
    expect(
      events.filter((e) => e.type === 'status' && (e.data as { status: string }).status === 'running').length,
    ).toBeGreaterThanOrEqual(2);
    summary('container-loss (killed at every step attempt)', {
      faults: kills,
      tasks: 1,
      lost: view.status === 'completed' ? 0 : 1,
    });
  });
});
