import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { Queue } from 'bullmq';
import type { TaskRequest } from '@research/contracts';
import {
  AGENT_QUEUE,
  JOBS,
  TaskStore,
  WorkerRegistry,
  createRedis,
  jobOptions,
  waitForRedis,
  type Redis,
  type TaskJobData,
} from '@research/queue';
import { API_MAIN, REDIS_URL, WORKER_MAIN } from './paths.js';
import { Spawned, freePort, until } from './process.js';
import { sleep } from './stats.js';

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

export interface WorkerSpec {
  concurrency: number;
  env?: Record<string, string>;
}

/**
 * One part's private slice of the system: its own hash-tagged queue prefix, worker ids,
 * containers and volume on the real Redis and Docker engine. `close()` removes all of it.
 */
export class BenchSystem {
  readonly id = randomBytes(4).toString('hex');
  readonly prefix = `{bench-${this.id}}`;
  readonly volume = `research-bench-${this.id}`;
  readonly redis: Redis = createRedis(REDIS_URL, 'worker');
  readonly store = new TaskStore(this.redis, this.prefix, { retentionSeconds: 3_600 });
  readonly agentQueue = new Queue(AGENT_QUEUE, { connection: this.redis, prefix: this.prefix });
  readonly workers: Spawned[] = [];
  readonly workerIds: string[] = [];
  private readonly others: Spawned[] = [];
  private readonly queues: Queue[] = [this.agentQueue];
  private submitted = 0;
  private closing: Promise<void> | undefined;

  private constructor(readonly part: string) {
    open.add(this);
  }

  static async open(part: string): Promise<BenchSystem> {
    const system = new BenchSystem(part);
    await waitForRedis(system.redis, REDIS_URL, 5_000);
    return system;
  }

  /** Another queue under this system's prefix (closed and deleted with it). */
  queue(name: string): Queue {
    const q = new Queue(name, { connection: this.redis, prefix: this.prefix });
    this.queues.push(q);
    return q;
  }

  /** Environment shared by the processes this system starts. */
  private baseEnv(): Record<string, string> {
    return { REDIS_URL, QUEUE_PREFIX: this.prefix, LOG_LEVEL: 'warn', LOG_PRETTY: 'false' };
  }

  /** Starts `node apps/worker/dist/main.js` with its own container; resolves once it has registered. */
  async spawnWorker(spec: WorkerSpec): Promise<Spawned> {
    const workerId = `bench-${this.id}-w${this.workerIds.length + 1}`;
    this.workerIds.push(workerId);
    const worker = new Spawned(workerId, WORKER_MAIN, {
      ...this.baseEnv(),
      WORKER_ID: workerId,
      WORKER_CONCURRENCY: String(spec.concurrency),
      SANDBOX_VOLUME: this.volume,
      SANDBOX_ON_SHUTDOWN: 'remove',
      SANDBOX_RETENTION_HOURS: '0',
      ...spec.env,
    });
    this.workers.push(worker);
    await until(
      `worker ${workerId} to register`,
      async () => {
        worker.assertAlive();
        return (await new WorkerRegistry(this.redis, this.prefix).lastBeat(workerId)) !== undefined;
      },
      90_000,
      100,
    );
    return worker;
  }

  /** Starts `node apps/api/dist/main.js` on a loopback port; resolves once /healthz answers. */
  async spawnApi(env: Record<string, string> = {}): Promise<{ api: Spawned; url: string; key: string }> {
    const port = await freePort();
    const key = `bench-${randomBytes(12).toString('hex')}`;
    const api = new Spawned(`api-${this.id}`, API_MAIN, {
      ...this.baseEnv(),
      PORT: String(port),
      API_KEYS: key,
      ...env,
    });
    this.others.push(api);
    const url = `http://127.0.0.1:${port}`;
    await until(
      'the API to answer /healthz',
      async () => {
        api.assertAlive();
        return fetch(`${url}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
      },
      30_000,
      100,
    );
    return { api, url, key };
  }

  /** Creates the tasks' records and adds their jobs, as the API does, in bulk. */
  async submit(requests: TaskRequest[]): Promise<string[]> {
    const createdAt = new Date().toISOString();
    const jobs = requests.map((request) => {
      const data: TaskJobData = { taskId: `t-${this.id}-${++this.submitted}`, request, createdAt };
      return { name: JOBS.task.name(data), data, opts: jobOptions('task', { jobId: data.taskId }) };
    });
    for (let i = 0; i < jobs.length; i += 250) {
      const chunk = jobs.slice(i, i + 250);
      await Promise.all(
        chunk.map(({ data }) =>
          this.store.lifecycle.create({
            id: data.taskId,
            request: data.request,
            createdAt,
            maxSteps: data.request.maxSteps ?? 40,
          }),
        ),
      );
      await this.agentQueue.addBulk(chunk);
    }
    return jobs.map((j) => j.data.taskId);
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
    const ids = await this.submit(requests);
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

  /** Stops the processes, then removes the containers, the volume and every key under the prefix. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.workers, ...this.others].map((p) => p.stop()));
      const docker = new Docker();
      for (const id of this.workerIds) {
        const list = await docker
          .listContainers({ all: true, filters: { label: [`research.worker=${id}`] } })
          .catch(() => []);
        for (const c of list)
          await docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => undefined);
      }
      await docker
        .getVolume(this.volume)
        .remove()
        .catch(() => undefined);
      await Promise.allSettled(this.queues.map((q) => q.close()));
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1_000);
        cursor = next;
        if (keys.length > 0) await this.redis.unlink(...keys);
      } while (cursor !== '0');
      await this.redis.quit().catch(() => this.redis.disconnect());
      open.delete(this);
    })();
    return this.closing;
  }
}

/** A prompt the offline model replays: one `<daytona-execute>` block per command, in order. */
export function replayPrompt(commands: string[]): string {
  return commands
    .map(
      (c) =>
        `<daytona-execute>\naction="execute-command"\ncommand="${c.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n</daytona-execute>`,
    )
    .join('\n');
}

/** `count` tasks of `steps` identical commands each. */
export function replayTasks(count: number, command: string, steps: number): TaskRequest[] {
  const prompt = replayPrompt(Array.from({ length: steps }, () => command));
  return Array.from({ length: count }, () => ({ prompt, maxSteps: steps + 1 }));
}
