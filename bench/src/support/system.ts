import { Queue } from 'bullmq';
import type { TaskRequest } from '@research/contracts';
import { waitForRedis } from '@research/queue';
import { System, replayPrompt } from '@research/testing';
import { GC_HOOK } from './paths.js';
import { sleep } from './stats.js';

export { replayPrompt };

const open = new Set<BenchSystem>();

/** Closes every system still open (Ctrl-C, or a part that threw). */
export async function closeAllSystems(): Promise<void> {
  await Promise.allSettled([...open].map((s) => s.close()));
}

export interface FinishCounts {
  completed: number;
  failed: number;
  cancelled: number;
}

export interface BatchResult extends FinishCounts {
  tasks: number;
  ids: string[];
  /** From resuming the paused queue to the last task's final status. */
  elapsedMs: number;
  /** Tasks with no final status when the wait gave up. */
  lost: number;
}

/** How long a process may take to stop on SIGTERM (a CPU profile is written on exit) before SIGKILL. */
const STOP_GRACE_MS = 20_000;

/**
 * Every bench process preloads the gc hook (the memory part asks it to collect garbage);
 * BENCH_CPU_PROF_DIR=<dir> writes a V8 CPU profile of each there, on exit.
 */
function nodeArgs(name: string): string[] {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  const profile = dir ? ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `${name}.cpuprofile`] : [];
  return [...profile, '--expose-gc', '--import', GC_HOOK];
}

/**
 * One part's private slice of the system (the test kit's `System`: its own queue prefix, worker
 * ids, containers and volume on the real Redis and Docker engine), run as in production: the
 * default heartbeat, no sandbox retention, a graceful stop. `close()` removes all of it.
 */
export class BenchSystem extends System {
  private readonly queues: Queue[] = [];

  private constructor(readonly part: string) {
    super({
      tag: 'bench',
      nodeArgs,
      env: {
        WORKER_HEARTBEAT_MS: undefined,
        SANDBOX_RETENTION_HOURS: '0',
        // Intake is measured far past any sane per-key rate or queued quota; both still run
        // (one Redis call each per submit), neither ever refuses here.
        API_RATE_LIMIT_PER_MIN: '1000000000',
        TENANT_MAX_QUEUED: '100000000',
      },
    });
    open.add(this);
  }

  static async open(part: string): Promise<BenchSystem> {
    const system = new BenchSystem(part);
    await waitForRedis(system.redis, system.redisUrl, 5_000);
    return system;
  }

  /** Another queue under this system's prefix (closed and deleted with it). */
  queue(name: string): Queue {
    const q = new Queue(name, { connection: this.redis, prefix: this.prefix });
    this.queues.push(q);
    return q;
  }

  /** Final statuses so far (the task store's own counters, private to this prefix). */
  async finished(): Promise<FinishCounts> {
    const { completed = 0, failed = 0, cancelled = 0 } = await this.store.stats.counters();
    return { completed, failed, cancelled };
  }

  /**
   * Submits the tasks to the paused `agent` queue, resumes it and waits until every one has a
   * final status: the clock sees only processing, not submission or worker start-up.
   */
  async runBatch(requests: TaskRequest[], timeoutMs: number): Promise<BatchResult> {
    const before = await this.finished();
    await this.agentQueue.pause();
    const ids = await this.enqueue(requests);
    const started = performance.now();
    await this.agentQueue.resume();
    let now = before;
    const total = (c: FinishCounts) =>
      c.completed + c.failed + c.cancelled - (before.completed + before.failed + before.cancelled);
    const deadline = Date.now() + timeoutMs;
    while (total(now) < requests.length && Date.now() < deadline) {
      for (const w of this.workers) w.assertAlive();
      await sleep(10);
      now = await this.finished();
    }
    const elapsedMs = performance.now() - started;
    const completed = now.completed - before.completed;
    const failed = now.failed - before.failed;
    const cancelled = now.cancelled - before.cancelled;
    return {
      tasks: requests.length,
      ids,
      elapsedMs,
      completed,
      failed,
      cancelled,
      lost: requests.length - completed - failed - cancelled,
    };
  }

  /** Stops the processes gracefully, then removes the containers, the volume and every key under the prefix. */
  override async close(): Promise<void> {
    await Promise.allSettled(this.queues.splice(0).map((q) => q.close()));
    await super.close({ graceMs: STOP_GRACE_MS });
    open.delete(this);
  }
}

/** `count` tasks of `steps` identical commands each. */
export function replayTasks(count: number, command: string, steps: number): TaskRequest[] {
  const prompt = replayPrompt(Array.from({ length: steps }, () => command));
  return Array.from({ length: count }, () => ({ prompt, maxSteps: steps + 1 }));
}
