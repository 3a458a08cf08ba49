import { BenchSystem, replayTasks } from '../support/system.js';
import { perSecond, round } from '../support/stats.js';

export interface ScalingBenchOptions {
  /** Worker process counts to measure, in increasing order. */
  workers?: number[];
  /** WORKER_CONCURRENCY of every worker, the same for each run. */
  concurrencyPerWorker?: number;
  /** `sleep 0.2` steps per task. */
  stepsPerTask?: number;
  /** Tasks per run = rounds × concurrency × workers, so every slot stays busy for as long. */
  rounds?: number;
}

/**
 * Completion throughput of 1, 2 and 4 worker processes (`node apps/worker/dist/main.js`, each
 * with its own container) on I/O-bound tasks. Workers are added between runs; each run fills
 * the paused queue and times it draining.
 */
export async function benchScaling({
  workers = [1, 2, 4],
  concurrencyPerWorker = 2,
  stepsPerTask = 3,
  rounds = 8,
}: ScalingBenchOptions = {}) {
  const system = await BenchSystem.open('scaling');
  const tasksPerSec: Record<string, number> = {};
  const lost: Record<string, number> = {};
  try {
    for (const n of workers) {
      await system.startWorkers(n - system.workers.length, { WORKER_CONCURRENCY: String(concurrencyPerWorker) });
      // A short warm-up wakes every worker's container runner before the clock starts.
      await system.runBatch(replayTasks(concurrencyPerWorker * n, 'sleep 0.2', 1), 60_000);
      const batch = await system.runBatch(
        replayTasks(rounds * concurrencyPerWorker * n, 'sleep 0.2', stepsPerTask),
        600_000,
      );
      tasksPerSec[String(n)] = perSecond(batch.completed, batch.elapsedMs);
      lost[String(n)] = batch.lost + batch.failed;
    }
    const one = tasksPerSec['1'];
    const four = tasksPerSec['4'];
    return {
      scaling: {
        tasksPerSec,
        efficiency4: one !== undefined && four !== undefined && one > 0 ? round(four / (4 * one), 3) : null,
        // The ceiling: every slot always busy, each step exactly 0.2 s.
        idealTasksPerSecPerWorker: round(concurrencyPerWorker / (stepsPerTask * 0.2), 2),
        concurrencyPerWorker,
        stepsPerTask,
        failedOrLost: lost,
      },
    };
  } finally {
    await system.close();
  }
}
