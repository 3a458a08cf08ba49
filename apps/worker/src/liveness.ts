import os from 'node:os';
import type { Logger } from '@research/config';
import type { DeathWatch, Redis, WorkerRegistry } from '@research/queue';
import type { Sandbox, SandboxInfo } from '@research/sandbox';

export interface LivenessOptions {
  workerId: string;
  /** The connection the beats go out on; its `ready` event sends one at once. */
  connection: Redis;
  /** The connection BullMQ's queues use (a dead worker's step queue is opened on it to reap it). */
  queues: Redis;
  registry: WorkerRegistry;
  deathWatch: DeathWatch;
  /** Each beat lists the tasks running here (the dashboard's /workers shows them). */
  running: () => string[];
  sandbox: Sandbox;
  sandboxInfo: SandboxInfo;
  /** How often this worker beats; the reaper looks every three beats. */
  heartbeatMs: number;
  /** Task workspaces older than this are deleted from the volume; 0 keeps them. */
  retentionMs: number;
  logger: Logger;
  /**
   * Removes dead workers' sandbox containers and slot volumes (see ./gc.ts): first once the death
   * watch can judge (a Redis restart silences every worker at once), then every `gcEveryMs`.
   * Default: none.
   */
  collectGarbage?: () => Promise<unknown>;
  /** Default: 3_600_000. */
  gcEveryMs?: number;
}

/**
 * How this worker shows it is alive and what it does about workers that are not: a heartbeat
 * into the registry, and the reaping of dead workers' step queues by whichever worker notices
 * first (dead as the death watch judges it). Also the hourly sweep of old task workspaces.
 */
export class Liveness {
  private readonly startedAt = new Date().toISOString();
  private readonly timers: NodeJS.Timeout[] = [];
  private reaping = false;
  private nextGcAt = 0;
  private readonly beatNow = () =>
    void this.beat().catch((err: unknown) => this.options.logger.warn({ err }, 'heartbeat failed'));

  constructor(private readonly options: LivenessOptions) {}

  /** Beats once (the worker counts as registered from then on), then keeps beating and reaping. */
  async start(): Promise<void> {
    const { connection, heartbeatMs, retentionMs, sandbox, logger } = this.options;
    await this.beat();
    this.timers.push(setInterval(this.beatNow, heartbeatMs));
    connection.on('ready', this.beatNow);
    this.timers.push(
      setInterval(
        () => void this.reap().catch((err: unknown) => logger.warn({ err }, 'reaper failed')),
        heartbeatMs * 3,
      ),
    );
    if (retentionMs > 0) {
      const sweep = () => void sandbox.cleanupExpired(retentionMs).catch(() => undefined);
      this.timers.push(setInterval(sweep, 3_600_000));
      sweep();
    }
  }

  stop(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
    this.options.connection.off('ready', this.beatNow);
  }

  /**
   * No beat is queued while Redis is away (it would land late with an old timestamp); the first
   * beat after a reconnect goes out at once.
   */
  private async beat(): Promise<void> {
    const { connection, registry, workerId, sandboxInfo, heartbeatMs } = this.options;
    if (connection.status !== 'ready') return;
    await registry.beat(
      {
        id: workerId,
        host: os.hostname(),
        pid: process.pid,
        startedAt: this.startedAt,
        containerId: sandboxInfo.containerId,
        containerName: sandboxInfo.name,
        image: sandboxInfo.image,
        running: this.options.running(),
      },
      heartbeatMs * 6,
    );
  }

  private async reap(): Promise<void> {
    if (this.reaping) return;
    this.reaping = true;
    const { deathWatch, registry, queues, workerId, logger } = this.options;
    try {
      for (const id of await deathWatch.dead()) {
        if (id === workerId) continue;
        if (await registry.reap(id, queues)) logger.info({ deadWorker: id }, "reaped a dead worker's step queue");
      }
      const { collectGarbage, gcEveryMs = 3_600_000 } = this.options;
      if (collectGarbage && deathWatch.canJudge() && Date.now() >= this.nextGcAt) {
        this.nextGcAt = Date.now() + gcEveryMs;
        await collectGarbage().catch((err: unknown) => logger.warn({ err }, 'sandbox garbage collection failed'));
      }
    } finally {
      this.reaping = false;
    }
  }
}
