import { afterAll, beforeAll } from 'vitest';
import { createLogger, loadEnv } from '@research/config';
import type { TaskRequest, TaskView } from '@research/contracts';
import { requireServices, System, type EnvOverrides } from '@research/testing';
import { startWorker, type WorkerRuntime } from '../src/runtime.js';

/**
 * The test kit's system without an API: tasks go straight into the queue, views come from the
 * task store, and workers run either in this process (to reach into their runtime) or as their
 * own OS processes (for kill -9). `close()` removes all of it.
 */
export class Harness extends System {
  private readonly runtimes: WorkerRuntime[] = [];

  constructor() {
    super({ tag: 'wtest' });
  }

  /** The `agent` queue. */
  get queue() {
    return this.agentQueue;
  }

  /** A worker in this process. */
  async startInProcessWorker(workerId: string, extra: EnvOverrides = {}): Promise<WorkerRuntime> {
    const env = loadEnv(this.workerEnv(workerId, extra));
    const runtime = await startWorker({ env, logger: createLogger({ level: 'warn', pretty: false }) });
    this.runtimes.push(runtime);
    return runtime;
  }

  /** Stops the in-process workers (their containers are removed). */
  async stopInProcessWorkers(): Promise<void> {
    await Promise.all(this.runtimes.splice(0).map((r) => r.close(5_000)));
  }

  /** Straight into the queue, as the API would put it there. */
  override async submit(request: TaskRequest): Promise<string> {
    const [id] = await this.enqueue([request]);
    return id!;
  }

  /** The task as the store has it (there is no API to ask). */
  override async view(id: string): Promise<TaskView> {
    const view = await this.store.records.view(id);
    if (!view) throw new Error(`no task ${id} in the store`);
    return view;
  }

  override async close(): Promise<void> {
    await this.stopInProcessWorkers();
    await super.close();
  }
}

/**
 * The harness of a test file: Redis and Docker checked before its tests (failing with a message
 * naming what to start), everything it started removed after them. Made at once, so that the
 * file's helpers can close over it; its Redis client connects in the background meanwhile.
 */
export function useHarness(): Harness {
  const h = new Harness();
  beforeAll(() => requireServices());
  afterAll(() => h.close());
  return h;
}
