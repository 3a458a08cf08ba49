import { ApiError, ResearchClient } from '@research/client';
import { until, type Spawned } from '@research/testing';
import { collectGarbage, rssMb } from '../support/process.js';
import { round, sleep } from '../support/stats.js';
import { callEach } from '../support/callers.js';
import { BenchSystem, replayPrompt } from '../support/system.js';

export interface MemoryBenchOptions {
  /** Tasks between the two measurements. */
  tasks?: number;
  /** Tasks before the first measurement (JIT, pools and caches warm up). */
  warmupTasks?: number;
  /** Concurrent HTTP submissions. */
  submitConcurrency?: number;
}

/**
 * RSS of a worker process and the API process before, after `tasks` and after twice `tasks`
 * 1-step tasks submitted over HTTP. Each reading follows a warm-up, a forced GC and a pause, so
 * the difference is what the tasks left behind; the third reading tells a leak (which grows
 * again) from one high reading (pages the allocator has not returned yet).
 */
export async function benchMemory({
  tasks = 1_000,
  warmupTasks = 100,
  submitConcurrency = 16,
}: MemoryBenchOptions = {}) {
  const system = await BenchSystem.open('memory');
  try {
    const api = await system.startApi();
    const worker = await system.startWorker(system.newWorkerId(), { WORKER_CONCURRENCY: '4' });
    const client = new ResearchClient({ baseUrl: system.apiUrl, apiKey: system.apiKey });
    const atStart = { worker: await settledRssMb(worker), api: await settledRssMb(api) };

    const submit = async (n: number): Promise<{ lost: number; rejected: number }> => {
      const target = (await total(system)) + n;
      let rejected = 0;
      const request = { prompt: replayPrompt(['true']), maxSteps: 2 };
      await callEach(n, submitConcurrency, async () => {
        await client.submit(request).catch((err: unknown) => {
          if (!(err instanceof ApiError)) throw err;
          rejected++;
        });
      });
      await until(`${n} tasks to finish`, async () => (await total(system)) >= target - rejected, 600_000, 100).catch(
        () => undefined,
      );
      return { lost: target - rejected - (await total(system)), rejected };
    };

    await submit(warmupTasks);
    const before = { worker: await settledRssMb(worker), api: await settledRssMb(api) };
    const { lost, rejected } = await submit(tasks);
    const after = { worker: await settledRssMb(worker), api: await settledRssMb(api) };
    const second = await submit(tasks);
    const afterTwice = { worker: await settledRssMb(worker), api: await settledRssMb(api) };
    const counts = await system.finished();
    return {
      memory: {
        workerRssMb: {
          before: before.worker,
          after: after.worker,
          afterTwice: afterTwice.worker,
          atStart: atStart.worker,
        },
        apiRssMb: { before: before.api, after: after.api, afterTwice: afterTwice.api, atStart: atStart.api },
        tasks,
        rejected: rejected + second.rejected,
        failed: counts.failed,
        lost: lost + second.lost,
      },
    };
  } finally {
    await system.close();
  }
}

async function total(system: BenchSystem): Promise<number> {
  const c = await system.finished();
  return c.completed + c.failed + c.cancelled;
}

/** GC twice with pauses between, then read VmRSS. */
async function settledRssMb(p: Spawned): Promise<number> {
  for (let i = 0; i < 2; i++) {
    collectGarbage(p);
    await sleep(500);
  }
  await sleep(1_000);
  return round(await rssMb(p), 1);
}
