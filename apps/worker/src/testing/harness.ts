import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { Queue } from 'bullmq';
import { createLogger, loadEnv, type Env } from '@research/config';
import { FINAL_STATUSES, type TaskRequest, type TaskView } from '@research/contracts';
import {
  AGENT_QUEUE,
  JOBS,
  TaskStore,
  WorkerRegistry,
  createRedis,
  jobOptions,
  waitForRedis,
  type Redis,
} from '@research/queue';
import { startWorker, type WorkerRuntime } from '../runtime.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const WORKER_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** Fails fast, saying what to start, when Redis or Docker is missing. */
export async function requireServices(): Promise<void> {
  const redis = createRedis(REDIS_URL, 'api');
  try {
    await waitForRedis(redis, REDIS_URL, 3_000);
  } finally {
    redis.disconnect();
  }
  try {
    await new Docker().ping();
  } catch {
    throw new Error('Docker engine not reachable at /var/run/docker.sock — start dockerd');
  }
}

/** A test's own queue prefix, Redis connection and task store; `close()` deletes its keys. */
export class Harness {
  readonly prefix = `{wtest-${randomUUID().slice(0, 8)}}`;
  readonly volume = `research-test-${randomUUID().slice(0, 8)}`;
  readonly redis: Redis = createRedis(REDIS_URL, 'worker');
  readonly store = new TaskStore(this.redis, this.prefix, { retentionSeconds: 3_600 });
  readonly queue = new Queue(AGENT_QUEUE, { connection: this.redis, prefix: this.prefix });
  private readonly runtimes: WorkerRuntime[] = [];
  private readonly processes: ChildProcess[] = [];
  readonly workerIds: string[] = [];

  envFor(workerId: string, extra: Record<string, string> = {}): Record<string, string> {
    this.workerIds.push(workerId);
    return {
      REDIS_URL,
      QUEUE_PREFIX: this.prefix,
      WORKER_ID: workerId,
      SANDBOX_VOLUME: this.volume,
      SANDBOX_ON_SHUTDOWN: 'remove',
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
      WORKER_HEARTBEAT_MS: '500',
      ...extra,
    };
  }

  /** A worker in this process. */
  async startWorker(workerId: string, extra: Record<string, string> = {}): Promise<WorkerRuntime> {
    const env: Env = loadEnv(this.envFor(workerId, extra));
    const runtime = await startWorker({ env, logger: createLogger({ level: 'warn', pretty: false }) });
    this.runtimes.push(runtime);
    return runtime;
  }

  /** Stops the in-process workers (their containers are removed). */
  async stopInProcessWorkers(): Promise<void> {
    await Promise.all(this.runtimes.splice(0).map((r) => r.close(5_000)));
  }

  /** A worker as its own OS process (for kill -9). Resolves once it has registered. */
  async spawnWorker(workerId: string, extra: Record<string, string> = {}): Promise<ChildProcess> {
    const child = spawn(process.execPath, [WORKER_MAIN], {
      env: { ...process.env, ...this.envFor(workerId, extra) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    this.processes.push(child);
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      if (child.exitCode !== null) throw new Error(`worker ${workerId} exited: ${output}`);
      if ((await new WorkerRegistry(this.redis, this.prefix).lastBeat(workerId)) !== undefined) return child;
      await sleep(100);
    }
    throw new Error(`worker ${workerId} did not register: ${output}`);
  }

  async submit(request: TaskRequest, id = `task-${randomUUID()}`): Promise<string> {
    const createdAt = new Date().toISOString();
    await this.store.lifecycle.create({ id, request, createdAt, maxSteps: request.maxSteps ?? 40 });
    const data = { taskId: id, request, createdAt };
    await this.queue.add(JOBS.task.name(data), data, jobOptions('task', { jobId: id }));
    return id;
  }

  async waitFor(id: string, predicate: (v: TaskView) => boolean, timeoutMs = 90_000): Promise<TaskView> {
    const until = Date.now() + timeoutMs;
    let last: TaskView | undefined;
    while (Date.now() < until) {
      last = await this.store.records.view(id);
      if (last && predicate(last)) return last;
      await sleep(100);
    }
    throw new Error(`task ${id} did not reach the expected state; last view: ${JSON.stringify(last)}`);
  }

  waitFinal(id: string, timeoutMs?: number): Promise<TaskView> {
    return this.waitFor(id, (v) => FINAL_STATUSES.includes(v.status), timeoutMs);
  }

  async close(): Promise<void> {
    for (const p of this.processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(this.runtimes.map((r) => r.close(5_000)));
    await this.queue.close();
    const docker = new Docker();
    for (const id of this.workerIds) {
      const list = await docker.listContainers({ all: true, filters: { label: [`research.worker=${id}`] } });
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
    const keys = await this.redis.keys(`${this.prefix}*`);
    for (let i = 0; i < keys.length; i += 500) await this.redis.del(...keys.slice(i, i + 500));
    await this.redis.quit();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A prompt the offline model replays: one `<daytona-execute>` block per command. */
export function replayPrompt(commands: string[]): string {
  return commands
    .map(
      (c) =>
        `<daytona-execute>\naction="execute-command"\ncommand="${c.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n</daytona-execute>`,
    )
    .join('\n');
}
