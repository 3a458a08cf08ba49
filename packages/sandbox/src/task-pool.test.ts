import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecuteCommandResult, StepOutcome } from '@research/contracts';
import { LABEL_POOL_OWNER } from './labels.js';
import { TaskSandboxPool, type SlotAssignments } from './task-pool.js';
import { removeSandboxes } from '@research/testing';
import { docker, requireDocker, uniqueId } from './test-helpers.js';

const workerId = uniqueId('pool');
const assigned = new Map<string, string>();
const assignments: SlotAssignments = {
  get: async (t) => assigned.get(t),
  set: async (t, s) => void assigned.set(t, s),
};
const pools: TaskSandboxPool[] = [];

function pool(warm = 1): TaskSandboxPool {
  const p = new TaskSandboxPool({ base: { workerId, docker }, assignments, warm });
  pools.push(p);
  return p;
}

function out(o: StepOutcome): ExecuteCommandResult {
  if (!o.ok || o.result.action !== 'execute-command') throw new Error(`unexpected outcome ${JSON.stringify(o)}`);
  return o.result;
}

async function leftovers(): Promise<{ containers: number; volumes: number }> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL_POOL_OWNER}=${workerId}`] },
  });
  const { Volumes } = await docker.listVolumes({ filters: { label: [`${LABEL_POOL_OWNER}=${workerId}`] } });
  return { containers: containers.length, volumes: (Volumes ?? []).length };
}

beforeAll(async () => {
  await requireDocker();
});

afterAll(async () => {
  for (const p of pools) await p.dispose('remove').catch(() => undefined);
  await removeSandboxes([workerId]);
});

describe('TaskSandboxPool (SANDBOX_ISOLATION=task)', () => {
  it('gives each task its own container and volume: no shared files, processes or hostnames', async () => {
    const p = pool(2);
    await p.ensure();
    expect((await leftovers()).containers).toBe(2);
    await p.run('task-a', { action: 'create-file', filePath: 'secret.txt', content: 'only for a' });
    await p.run('task-b', { action: 'create-file', filePath: 'mine.txt', content: 'b' });
    const a = out(
      await p.run('task-a', { action: 'execute-command', command: 'ls /workspace; hostname; sleep 30 & echo started' }),
    );
    const b = out(
      await p.run('task-b', {
        action: 'execute-command',
        command: 'ls /workspace; hostname; ps -eo args | grep -c "^sleep 30" || true',
      }),
    );
    expect(a.stdout.split('\n')[0]).toBe('task-a');
    expect(b.stdout.split('\n')[0]).toBe('task-b');
    // Different containers (hostnames), and task a's background sleep is invisible to task b.
    expect(a.stdout.split('\n')[1]).not.toBe(b.stdout.split('\n')[1]);
    expect(b.stdout.trim().split('\n').at(-1)).toBe('0');
    const peek = out(await p.run('task-b', { action: 'execute-command', command: 'cat /workspace/task-a/secret.txt' }));
    expect(peek.exitCode).not.toBe(0);
    const refused = await p.run('task-b', { action: 'read-file', filePath: '/workspace/task-a/secret.txt' });
    expect(refused.ok).toBe(false);
  });

  it('lets a task resume in a new pool (another worker) with its files, then removes its container and volume on release', async () => {
    const first = pool(0);
    await first.run('task-c', { action: 'create-file', filePath: 'progress.txt', content: 'step 1 done' });
    // The first worker dies without releasing anything; a second one adopts the task's slot.
    const second = pool(0);
    const read = await second.run('task-c', { action: 'read-file', filePath: 'progress.txt' });
    expect(read).toMatchObject({ ok: true, result: { content: 'step 1 done' } });
    const slot = assigned.get('task-c')!;
    await second.releaseTask('task-c');
    expect(await docker.listContainers({ all: true, filters: { label: [`research.slot=${slot}`] } })).toHaveLength(0);
    expect((await docker.listVolumes({ filters: { name: [`research-slot-${slot}`] } })).Volumes ?? []).toHaveLength(0);
  });

  it('removes idle slots on dispose', async () => {
    for (const p of pools) {
      await p.releaseTask('task-a');
      await p.releaseTask('task-b');
      await p.dispose('remove');
    }
    expect(await leftovers()).toEqual({ containers: 0, volumes: 0 });
  });
});
