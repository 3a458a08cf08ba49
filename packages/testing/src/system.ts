import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { FINAL_STATUSES, type TaskRequest, type TaskView } from '@research/contracts';
import {
  AGENT_QUEUE,
  JOBS,
  TaskStore,
  WorkerRegistry,
  createRedis,
  taskJobOptions,
  type Redis,
  type TaskJobData,
} from '@research/queue';
import { removeSandboxes } from './docker.js';
import { MAINS } from './paths.js';
import { deletePrefix } from './prefix.js';
import { Spawned } from './process.js';
import { REDIS_URL, freePort, sleep, until } from './services.js';
import { readEventStream, type StreamedEvent } from './sse.js';

/** Environment variables over the kit's; `undefined` leaves a variable to the caller's environment. */
export type EnvOverrides = Record<string, string | undefined>;

export interface SystemOptions {
  /** The Redis every process uses. Default: {@link REDIS_URL}. */
  redisUrl?: string;
  /**
   * Environment of every process this system starts, over the kit's (its prefix and volume, a
   * `warn` log, sandboxes removed on shutdown, a 500 ms worker heartbeat). Default: none.
   */
  env?: EnvOverrides;
  /** Names the queue prefix `{<tag>-<id>}`, the volume `research-<tag>-<id>` and generated worker ids. Default `sys`. */
  tag?: string;
  /** `node` flags of a process, by its name (a worker's is its id). Default: none. */
  nodeArgs?: (name: string) => string[];
}

/**
 * What tests set for every process: a quiet log, sandboxes removed when a worker stops, and a
 * 500 ms heartbeat so that a dead worker is judged dead within seconds, not the default minute.
 */
const KIT_ENV = {
  SANDBOX_ON_SHUTDOWN: 'remove',
  LOG_LEVEL: 'warn',
  LOG_PRETTY: 'false',
  WORKER_HEARTBEAT_MS: '500',
};

/** How long a process may take to come up: a worker's first container start is the slow one. */
const API_START_MS = 60_000;
const WORKER_START_MS = 90_000;

/**
 * The whole system as separate OS processes — the API, workers, the dashboard — on the real
 * Redis and Docker engine, under a queue prefix, volume and worker ids of its own. `close()`
 * removes every process, container, volume and key it made.
 */
export class System {
  readonly id = randomBytes(4).toString('hex');
  readonly prefix: string;
  readonly volume: string;
  readonly apiKey = `key-${randomUUID()}`;
  readonly redisUrl: string;
  private readonly tag: string;
  /** The system's own connection; speaks to Redis the way its processes do (Cluster with `REDIS_CLUSTER=true`). */
  readonly redis: Redis;
  /** The worker processes, in the order they started. */
  readonly workers: Spawned[] = [];
  /** Chosen at the first start and kept, so a restarted API or dashboard is where clients left it. */
  apiPort = 0;
  dashboardPort = 0;
  private readonly processes: Spawned[] = [];
  private readonly workerIds = new Set<string>();
  private readonly registry: WorkerRegistry;
  private generatedWorkers = 0;
  private enqueued = 0;
  private taskStore: TaskStore | undefined;
  private taskQueue: Queue<TaskJobData> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: SystemOptions = {}) {
    this.tag = options.tag ?? 'sys';
    this.prefix = `{${this.tag}-${this.id}}`;
    this.volume = `research-${this.tag}-${this.id}`;
    this.redisUrl = options.redisUrl ?? REDIS_URL;
    this.redis = createRedis(this.redisUrl, 'worker', { cluster: options.env?.REDIS_CLUSTER === 'true' });
    this.registry = new WorkerRegistry(this.redis, this.prefix);
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  get dashboardUrl(): string {
    return `http://127.0.0.1:${this.dashboardPort}`;
  }

  /** Task records under this prefix, for tests that look behind the API (created on first use). */
  get store(): TaskStore {
    this.taskStore ??= new TaskStore(this.redis, this.prefix, { retentionSeconds: 3_600 });
    return this.taskStore;
  }

  /** The `agent` queue under this prefix (created on first use, closed with the system). */
  get agentQueue(): Queue<TaskJobData> {
    this.taskQueue ??= new Queue<TaskJobData>(AGENT_QUEUE, { connection: this.redis, prefix: this.prefix });
    return this.taskQueue;
  }

  /** The environment this system gives a process, without the test's own `process.env`. */
  env(extra: EnvOverrides = {}): Record<string, string> {
    const merged: EnvOverrides = {
      REDIS_URL: this.redisUrl,
      QUEUE_PREFIX: this.prefix,
      SANDBOX_VOLUME: this.volume,
      ...KIT_ENV,
      ...this.options.env,
      ...extra,
    };
    return Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined));
  }

  /** {@link env} for worker `workerId`, whose containers `close()` then removes (for a worker run in-process). */
  workerEnv(workerId: string, extra: EnvOverrides = {}): Record<string, string> {
    this.workerIds.add(workerId);
    return this.env({ WORKER_ID: workerId, ...extra });
  }

  /**
   * `node apps/api/dist/main.js` with this system's key; resolves once `/readyz` answers 200 (its
   * Redis connection is up). The API listens before that, answering 503 `redis_unavailable`
   * meanwhile, so a test's first request could otherwise race the connection.
   */
  async startApi(extra: EnvOverrides = {}): Promise<Spawned> {
    if (this.apiPort === 0) this.apiPort = await freePort();
    const api = this.start('api', MAINS.api, this.env({ PORT: String(this.apiPort), API_KEYS: this.apiKey, ...extra }));
    await this.ready(api, `the API on ${this.apiUrl}`, API_START_MS, async () => {
      const res = await fetch(`${this.apiUrl}/readyz`);
      await res.body?.cancel();
      return res.ok;
    });
    return api;
  }

  /** `node apps/worker/dist/main.js` as worker `workerId`, with its own container; resolves once it has registered. */
  async startWorker(workerId: string, extra: EnvOverrides = {}): Promise<Spawned> {
    const worker = this.start(workerId, MAINS.worker, this.workerEnv(workerId, extra));
    this.workers.push(worker);
    await this.ready(
      worker,
      `worker ${workerId}`,
      WORKER_START_MS,
      async () => (await this.registry.lastBeat(workerId)) !== undefined,
    );
    return worker;
  }

  /** A worker id of this system's own: `<tag>-<id>-w<n>`, n counting from 1. */
  newWorkerId(): string {
    return `${this.tag}-${this.id}-w${++this.generatedWorkers}`;
  }

  /** `count` more workers with {@link newWorkerId} ids, one after the other. */
  async startWorkers(count: number, extra: EnvOverrides = {}): Promise<Spawned[]> {
    const started: Spawned[] = [];
    for (let i = 0; i < count; i++) started.push(await this.startWorker(this.newWorkerId(), extra));
    return started;
  }

  /** `node apps/dashboard/dist/main.js` on a free port ({@link dashboardUrl}); resolves once it answers at all. */
  async startDashboard(extra: EnvOverrides = {}): Promise<Spawned> {
    if (this.dashboardPort === 0) this.dashboardPort = await freePort();
    const dashboard = this.start(
      'dashboard',
      MAINS.dashboard,
      this.env({ DASHBOARD_PORT: String(this.dashboardPort), ...extra }),
    );
    await this.ready(dashboard, `the dashboard on ${this.dashboardUrl}`, API_START_MS, async () => {
      const res = await fetch(`${this.dashboardUrl}/`);
      await res.body?.cancel();
      return true;
    });
    return dashboard;
  }

  /** Sends `signal` to one of the processes and waits until it has exited. */
  stop(proc: Spawned, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return proc.stop(signal);
  }

  private start(name: string, main: string, env: Record<string, string>): Spawned {
    const proc = new Spawned(name, main, { ...process.env, ...env }, this.options.nodeArgs?.(name) ?? []);
    this.processes.push(proc);
    return proc;
  }

  /** Waits for `check`; fails at once, with the process's output, if the process dies meanwhile. */
  private async ready(proc: Spawned, what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
    await until(
      what,
      async () => {
        proc.assertAlive();
        return check().catch(() => false);
      },
      timeoutMs,
      100,
    ).catch((err: Error) => {
      throw proc.exited ? err : new Error(`${what} did not come up: ${err.message}\n${proc.output()}`);
    });
  }

  /** `fetch` against the API with the key (unless `headers` carry their own) and JSON bodies. */
  request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${this.apiKey}`);
    if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return fetch(`${this.apiUrl}${path}`, { ...init, headers });
  }

  /** `POST /v1/jobs`; the new task's id. */
  async submit(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<string> {
    const res = await this.request('/v1/jobs', { method: 'POST', body: JSON.stringify(body), headers });
    if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  }

  /**
   * Creates the tasks' records and adds their jobs as the API does, in bulk, with no API
   * running (for the bench and the worker's tests); their ids, in order.
   */
  async enqueue(requests: TaskRequest[]): Promise<string[]> {
    const createdAt = new Date().toISOString();
    const jobs = requests.map((request) => {
      const data: TaskJobData = { taskId: `t-${this.id}-${++this.enqueued}`, request, createdAt };
      return { name: JOBS.task.name(data), data, opts: taskJobOptions(data.taskId, request) };
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

  /** `GET /v1/jobs/:id`. */
  async view(id: string): Promise<TaskView> {
    const res = await this.request(`/v1/jobs/${id}`);
    if (!res.ok) throw new Error(`GET /v1/jobs/${id} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as TaskView;
  }

  /** Polls {@link view} until `predicate` holds (default timeout 120 s); the last view when it never does. */
  async waitFor(id: string, predicate: (v: TaskView) => boolean, timeoutMs = 120_000): Promise<TaskView> {
    const deadline = Date.now() + timeoutMs;
    let last: TaskView | undefined;
    while (Date.now() < deadline) {
      last = await this.view(id).catch(() => last);
      if (last && predicate(last)) return last;
      await sleep(150);
    }
    throw new Error(`task ${id} did not reach the expected state; last view: ${JSON.stringify(last)}`);
  }

  waitFinal(id: string, timeoutMs?: number): Promise<TaskView> {
    return this.waitFor(id, (v) => FINAL_STATUSES.includes(v.status), timeoutMs);
  }

  /** Reads a task's SSE stream until it closes (or `stopAfter` events), from after `lastEventId`. */
  async events(id: string, opts: { lastEventId?: string; stopAfter?: number } = {}): Promise<StreamedEvent[]> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (opts.lastEventId) headers['last-event-id'] = opts.lastEventId;
    const controller = new AbortController();
    const res = await this.request(`/v1/jobs/${id}/events`, { headers, signal: controller.signal });
    if (res.status !== 200 || !res.body) throw new Error(`events answered ${res.status}`);
    const out: StreamedEvent[] = [];
    await readEventStream(
      res.body,
      (event) => {
        out.push(event);
        if (opts.stopAfter !== undefined && out.length >= opts.stopAfter) controller.abort();
      },
      controller.signal,
    );
    return out;
  }

  /**
   * Follows a task's SSE stream like a browser's EventSource: when the connection drops or the
   * stream ends before the final status, it reconnects with `Last-Event-ID` (retrying while the
   * API is away) until it has seen the final status (default timeout 180 s). Every event
   * received, in order, and how many times it had to reconnect.
   */
  async follow(
    id: string,
    opts: { onEvent?: (e: StreamedEvent) => void; timeoutMs?: number } = {},
  ): Promise<{ events: StreamedEvent[]; reconnects: number }> {
    const events: StreamedEvent[] = [];
    let reconnects = 0;
    let lastId: string | undefined;
    let done = false;
    const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
    const isFinal = (e: StreamedEvent) =>
      e.type === 'status' && FINAL_STATUSES.includes((e.data as { status: never }).status);
    for (let connection = 0; !done; connection++) {
      if (Date.now() > deadline)
        throw new Error(`gave up following ${id} after ${reconnects} reconnects; got ${events.length} events`);
      if (connection > 0) {
        reconnects++;
        await sleep(200);
      }
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastId) headers['last-event-id'] = lastId;
      const res = await this.request(`/v1/jobs/${id}/events`, { headers }).catch(() => undefined);
      if (!res) continue; // the API is not listening (yet)
      if (res.status !== 200 || !res.body) {
        await res.body?.cancel().catch(() => undefined);
        if (res.status >= 500 || res.status === 429) continue;
        throw new Error(`events answered ${res.status}`);
      }
      await readEventStream(res.body, (event) => {
        events.push(event);
        lastId = event.id;
        opts.onEvent?.(event);
        if (isFinal(event)) done = true;
      }).catch(() => undefined); // connection reset: reconnect
    }
    return { events, reconnects };
  }

  /**
   * Kills every process (SIGKILL; with `graceMs`, SIGTERM first and SIGKILL after that long),
   * then removes the workers' containers and volumes and every key under the prefix. Safe to
   * call more than once.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.closing ??= this.removeAll(options.graceMs);
    return this.closing;
  }

  private async removeAll(graceMs: number | undefined): Promise<void> {
    await Promise.allSettled(
      this.processes.map((p) => (graceMs === undefined ? p.stop('SIGKILL') : p.stop('SIGTERM', graceMs))),
    );
    await this.taskQueue?.close().catch(() => undefined);
    await removeSandboxes(this.workerIds, this.volume);
    await deletePrefix(this.redis, this.prefix).catch(() => undefined);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
