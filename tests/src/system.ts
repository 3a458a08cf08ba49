import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { createParser } from 'eventsource-parser';
import { FINAL_STATUSES, type TaskView } from '@research/contracts';
import { createRedis, waitForRedis, type Redis } from '@research/queue';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAINS = {
  api: `${ROOT}apps/api/dist/main.js`,
  worker: `${ROOT}apps/worker/dist/main.js`,
  dashboard: `${ROOT}apps/dashboard/dist/main.js`,
} as const;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Fails fast, saying what to start, when Redis or Docker is missing. */
export async function requireServices(redisUrl = REDIS_URL): Promise<void> {
  const redis = createRedis(redisUrl, 'api');
  try {
    await waitForRedis(redis, redisUrl, 3_000);
  } finally {
    redis.disconnect();
  }
  try {
    await new Docker().ping();
  } catch {
    throw new Error('Docker engine not reachable at /var/run/docker.sock — start dockerd');
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Proc {
  name: string;
  child: ChildProcess;
  output: () => string;
}

/**
 * The whole system as separate OS processes — API, workers — on the real Redis and Docker,
 * under a queue prefix, volume and worker ids of its own. `close()` removes all of it.
 */
export class System {
  readonly id = randomUUID().slice(0, 8);
  readonly prefix = `{sys-${this.id}}`;
  readonly volume = `research-sys-${this.id}`;
  readonly apiKey = `key-${randomUUID()}`;
  readonly redis: Redis;
  apiPort = 0;
  private readonly procs: Proc[] = [];
  private readonly workerIds = new Set<string>();

  constructor(
    readonly redisUrl = REDIS_URL,
    private readonly baseEnv: Record<string, string> = {},
  ) {
    // Its own connection speaks to Redis the way its processes do.
    this.redis = createRedis(redisUrl, 'worker', { cluster: baseEnv.REDIS_CLUSTER === 'true' });
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  private env(extra: Record<string, string>): Record<string, string> {
    return {
      ...process.env,
      REDIS_URL: this.redisUrl,
      QUEUE_PREFIX: this.prefix,
      SANDBOX_VOLUME: this.volume,
      SANDBOX_ON_SHUTDOWN: 'remove',
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
      WORKER_HEARTBEAT_MS: '500',
      ...this.baseEnv,
      ...extra,
    } as Record<string, string>;
  }

  private start(name: string, main: string, env: Record<string, string>): Proc {
    const child = spawn(process.execPath, [main], { env: this.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (d: Buffer) => {
      out += d.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const proc = { name, child, output: () => out };
    this.procs.push(proc);
    return proc;
  }

  async startApi(extra: Record<string, string> = {}): Promise<Proc> {
    if (this.apiPort === 0) this.apiPort = await freePort();
    const proc = this.start('api', MAINS.api, { PORT: String(this.apiPort), API_KEYS: this.apiKey, ...extra });
    await this.until(
      async () => (await fetch(`${this.apiUrl}/healthz`).catch(() => undefined))?.ok === true,
      `API on ${this.apiUrl}`,
      proc,
    );
    return proc;
  }

  async startWorker(workerId: string, extra: Record<string, string> = {}): Promise<Proc> {
    this.workerIds.add(workerId);
    const proc = this.start(`worker ${workerId}`, MAINS.worker, { WORKER_ID: workerId, ...extra });
    await this.until(
      async () => (await this.redis.zscore(`${this.prefix}:workers`, workerId)) !== null,
      `worker ${workerId}`,
      proc,
    );
    return proc;
  }

  async startDashboard(port: number, extra: Record<string, string> = {}): Promise<Proc> {
    const proc = this.start('dashboard', MAINS.dashboard, { DASHBOARD_PORT: String(port), ...extra });
    await this.until(
      async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined)) !== undefined,
      `dashboard on ${port}`,
      proc,
    );
    return proc;
  }

  private async until(check: () => Promise<boolean>, what: string, proc: Proc, timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (proc.child.exitCode !== null)
        throw new Error(`${what} exited with ${proc.child.exitCode}:\n${proc.output()}`);
      if (await check().catch(() => false)) return;
      await sleep(100);
    }
    throw new Error(`${what} did not come up:\n${proc.output()}`);
  }

  async stop(proc: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    const exited = new Promise((r) => proc.child.once('exit', r));
    proc.child.kill(signal);
    await exited;
  }

  /** `fetch` against the API with the key (unless headers say otherwise). */
  request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${this.apiKey}`);
    if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return fetch(`${this.apiUrl}${path}`, { ...init, headers });
  }

  async submit(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<string> {
    const res = await this.request('/v1/jobs', { method: 'POST', body: JSON.stringify(body), headers });
    if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { id: string }).id;
  }

  async view(id: string): Promise<TaskView> {
    const res = await this.request(`/v1/jobs/${id}`);
    if (!res.ok) throw new Error(`GET /v1/jobs/${id} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as TaskView;
  }

  async waitFor(id: string, predicate: (v: TaskView) => boolean, timeoutMs = 120_000): Promise<TaskView> {
    const until = Date.now() + timeoutMs;
    let last: TaskView | undefined;
    while (Date.now() < until) {
      last = await this.view(id).catch(() => last);
      if (last && predicate(last)) return last;
      await sleep(150);
    }
    throw new Error(`task ${id} did not reach the expected state; last view: ${JSON.stringify(last)}`);
  }

  waitFinal(id: string, timeoutMs?: number): Promise<TaskView> {
    return this.waitFor(id, (v) => FINAL_STATUSES.includes(v.status), timeoutMs);
  }

  /** Reads a task's SSE stream until it closes (or `stopAfter` events), from `lastEventId`. */
  async events(
    id: string,
    opts: { lastEventId?: string; stopAfter?: number } = {},
  ): Promise<{ id: string; type: string; data: unknown }[]> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (opts.lastEventId) headers['last-event-id'] = opts.lastEventId;
    const controller = new AbortController();
    const res = await this.request(`/v1/jobs/${id}/events`, { headers, signal: controller.signal });
    if (res.status !== 200 || !res.body) throw new Error(`events answered ${res.status}`);
    const out: { id: string; type: string; data: unknown }[] = [];
    const parser = createParser({
      onEvent: (e) => {
        out.push({ id: e.id ?? '', type: e.event ?? 'message', data: JSON.parse(e.data) });
        if (opts.stopAfter !== undefined && out.length >= opts.stopAfter) controller.abort();
      },
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
        parser.feed(decoder.decode(chunk, { stream: true }));
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.procs.map((p) => this.stop(p, 'SIGKILL')));
    const docker = new Docker();
    for (const id of this.workerIds) {
      for (const label of [`research.worker=${id}`, `research.pool-owner=${id}`]) {
        const list = await docker.listContainers({ all: true, filters: { label: [label] } });
        for (const c of list)
          await docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => undefined);
      }
      const { Volumes } = await docker.listVolumes({ filters: { label: [`research.pool-owner=${id}`] } });
      for (const v of Volumes ?? [])
        await docker
          .getVolume(v.Name)
          .remove()
          .catch(() => undefined);
    }
    await docker
      .getVolume(this.volume)
      .remove()
      .catch(() => undefined);
    const keys = await this.redis.keys(`${this.prefix}*`).catch(() => [] as string[]);
    for (let i = 0; i < keys.length; i += 500) await this.redis.del(...keys.slice(i, i + 500));
    await this.redis.quit().catch(() => undefined);
  }
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
