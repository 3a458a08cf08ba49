import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import { LABEL_POOL_OWNER, TaskSandboxPool, type SlotAssignments } from '@research/sandbox';
import { until } from '@research/testing';
import { percentile, round, sleep } from '../support/stats.js';

export interface ClaimBenchOptions {
  /** Warm claims measured (each waits for the pool to refill first). Default 15. */
  warmSamples?: number;
  /** Cold creates measured (a pool with no warm slots). Default 5. */
  coldSamples?: number;
  /** The warm pool's size (SANDBOX_POOL_SIZE). Default 2. */
  poolSize?: number;
}

/**
 * `SANDBOX_ISOLATION=task`: a task's claim of a sandbox → its first command's result, through
 * the worker's own `TaskSandboxPool` on the real engine. Warm: a started slot from the pool
 * (the pool refills in the background; each sample waits for it to be full again, and the
 * number of idle slots is watched all along, never to exceed the pool's size). Cold: a pool
 * with no warm slots, so the claim creates the volume and the container and waits for the
 * runner. Slot assignments are kept in memory here (the worker keeps them in Redis: one more
 * round trip, well under a millisecond on loopback).
 */
export async function benchClaim({ warmSamples = 15, coldSamples = 5, poolSize = 2 }: ClaimBenchOptions = {}) {
  const docker = new Dockerode();
  const workerId = `bench-claim-${randomBytes(4).toString('hex')}`;
  const assigned = new Map<string, string>();
  const assignments: SlotAssignments = {
    get: async (t) => assigned.get(t),
    set: async (t, s) => void assigned.set(t, s),
  };
  const warmPool = new TaskSandboxPool({ base: { workerId, docker }, assignments, warm: poolSize });
  const coldPool = new TaskSandboxPool({ base: { workerId: `${workerId}-c`, docker }, assignments, warm: 0 });
  const owned = async (owner: string) =>
    docker.listContainers({ all: true, filters: { label: [`${LABEL_POOL_OWNER}=${owner}`] } });
  let busy = 0;
  let maxIdle = 0;
  let watching = true;
  // Idle slots = the pool's containers minus the ones holding a task.
  const watcher = (async () => {
    while (watching) {
      maxIdle = Math.max(maxIdle, (await owned(workerId)).length - busy);
      await sleep(50);
    }
  })();
  let failed = 0;
  const firstCommand = async (pool: TaskSandboxPool, taskId: string): Promise<number> => {
    const started = performance.now();
    const outcome = await pool.run(taskId, { action: 'execute-command', command: 'true' });
    const ms = performance.now() - started;
    if (!outcome.ok || outcome.result.action !== 'execute-command' || outcome.result.exitCode !== 0) failed++;
    return ms;
  };
  try {
    await warmPool.ensure();
    const warm: number[] = [];
    for (let i = 0; i < warmSamples + 1; i++) {
      await until('the warm pool to refill', async () => (await owned(workerId)).length - busy >= poolSize, 60_000, 20);
      const taskId = `claim-${i}`;
      busy++;
      const ms = await firstCommand(warmPool, taskId);
      if (i > 0) warm.push(ms); // the first warms the bench's own code paths
      await warmPool.releaseTask(taskId);
      busy--;
    }
    const cold: number[] = [];
    for (let i = 0; i < coldSamples; i++) {
      const taskId = `claim-cold-${i}`;
      cold.push(await firstCommand(coldPool, taskId));
      await coldPool.releaseTask(taskId);
    }
    watching = false;
    await watcher;
    return {
      claim: {
        warmP50Ms: round(percentile(warm, 50)),
        warmP99Ms: round(percentile(warm, 99)),
        coldP50Ms: round(percentile(cold, 50)),
        coldMaxMs: round(Math.max(...cold)),
        poolSize,
        maxIdleSeen: maxIdle,
        samples: { warm: warm.length, cold: cold.length },
        failed,
      },
    };
  } finally {
    watching = false;
    await watcher.catch(() => undefined);
    await Promise.allSettled([warmPool.dispose('remove'), coldPool.dispose('remove')]);
  }
}
