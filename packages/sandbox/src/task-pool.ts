import { randomUUID } from 'node:crypto';
import Dockerode from 'dockerode';
import { createLogger, type Logger } from '@research/config';
import type { DaytonaAction, StepOutcome } from '@research/contracts';
import { ownLabels } from './container.js';
import { DockerSandbox } from './docker-sandbox.js';
import { LABEL_POOL_OWNER, LABEL_PREFIX, LABEL_SLOT, LABEL_VOLUME } from './labels.js';
import { DEFAULTS, type DockerSandboxOptions } from './options.js';
import { assertTaskId } from './paths.js';
import type { ExportOptions, ExportResult, RunOptions, Sandbox, SandboxInfo } from './types.js';

/**
 * Where a task's slot is recorded, so a task that resumes on another worker (same Docker engine)
 * finds its container and volume again. The worker backs it with the task's record in Redis.
 */
export interface SlotAssignments {
  get(taskId: string): Promise<string | undefined>;
  set(taskId: string, slotId: string): Promise<void>;
}

export interface TaskSandboxPoolOptions {
  /** Options of each task's sandbox; `workerId` is this worker's id, `volume` is ignored (each slot has its own). */
  base: DockerSandboxOptions;
  assignments: SlotAssignments;
  /** Started, ready containers kept for the next tasks. Default: 2. */
  warm?: number;
  docker?: Dockerode;
  logger?: Logger;
}

interface Slot {
  id: string;
  volume: string;
  sandbox: DockerSandbox;
}

/**
 * `SANDBOX_ISOLATION=task`: every task gets a container and a volume of its own, taken from a
 * small pool of warm (started, runner ready) containers and removed when the task is released.
 * Tasks then share nothing: no processes, no files, no pids or memory budget.
 */
export class TaskSandboxPool implements Sandbox {
  private readonly docker: Dockerode;
  private readonly log: Logger;
  private readonly warmTarget: number;
  private readonly idle: Slot[] = [];
  private readonly byTask = new Map<string, Promise<Slot>>();
  private filling: Promise<void> | undefined;
  private disposed = false;
  private retired = 0;

  constructor(private readonly o: TaskSandboxPoolOptions) {
    this.docker = o.docker ?? o.base.docker ?? new Dockerode();
    this.log = (o.logger ?? o.base.logger ?? createLogger({ level: 'silent', pretty: false })).child({
      component: 'sandbox-pool',
      workerId: o.base.workerId,
    });
    this.warmTarget = o.warm ?? 2;
  }

  private get prefix(): string {
    return this.o.base.queuePrefix ?? DEFAULTS.queuePrefix;
  }

  get restarts(): number {
    let n = this.retired;
    for (const s of this.idle) n += s.sandbox.restarts;
    return n;
  }

  /** Fills the warm pool; the info names the pool rather than one container. */
  async ensure(): Promise<SandboxInfo> {
    await this.fill();
    const first = this.idle[0];
    const info = first ? await first.sandbox.ensure() : undefined;
    return {
      containerId: info?.containerId ?? '',
      name: `research-sandbox-${this.o.base.workerId}-pool (${this.idle.length} warm)`,
      image: info?.image ?? this.o.base.image ?? 'research-sandbox:latest',
      created: info?.created ?? false,
      started: info?.started ?? false,
    };
  }

  async run(taskId: string, action: DaytonaAction, options?: RunOptions): Promise<StepOutcome> {
    const slot = await this.slotFor(taskId);
    return slot.sandbox.run(taskId, action, options);
  }

  async cancelTask(taskId: string): Promise<void> {
    const slot = await this.byTask.get(taskId);
    await slot?.sandbox.cancelTask(taskId);
  }

  async exportFiles(taskId: string, options: ExportOptions): Promise<ExportResult> {
    const slot = await this.slotFor(taskId);
    return slot.sandbox.exportFiles(taskId, options);
  }

  /** The task is over (its files are kept elsewhere): its container and volume go. */
  async releaseTask(taskId: string): Promise<void> {
    await this.removeWorkspace(taskId);
  }

  /** A task's container and volume are its workspace: both go. False when it had none left. */
  async removeWorkspace(taskId: string): Promise<boolean> {
    const pending = this.byTask.get(taskId);
    this.byTask.delete(taskId);
    const slot = pending ? await pending.catch(() => undefined) : await this.adopt(taskId);
    if (!slot) return false;
    await this.destroy(slot);
    return true;
  }

  /**
   * This worker's slots of tasks that never finished: unused containers and volumes older than
   * maxAgeMs. Other workers' slots are left to garbage collection (gc.ts), which knows who is alive.
   */
  async cleanupExpired(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    let removed = 0;
    const mine = new Set([...this.idle.map((s) => s.id)]);
    for (const p of this.byTask.values()) {
      const s = await p.catch(() => undefined);
      if (s) mine.add(s.id);
    }
    const label = [`${LABEL_POOL_OWNER}=${this.o.base.workerId}`, `${LABEL_PREFIX}=${this.prefix}`];
    const containers = await this.docker.listContainers({ all: true, filters: { label } });
    for (const c of containers) {
      const slot = c.Labels[LABEL_SLOT];
      if (!slot || mine.has(slot) || c.Created * 1000 > cutoff) continue;
      await this.docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined);
      removed++;
    }
    const { Volumes } = await this.docker.listVolumes({ filters: { label, dangling: ['true'] } });
    for (const v of Volumes ?? []) {
      const slot = v.Labels?.[LABEL_SLOT];
      const created = Date.parse((v as { CreatedAt?: string }).CreatedAt ?? '');
      if (!slot || mine.has(slot) || !(created < cutoff)) continue;
      await this.docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined);
      removed++;
    }
    return removed;
  }

  /** Idle slots always go; slots still holding a task follow `mode` (their task may resume elsewhere). */
  async dispose(mode: 'keep' | 'stop' | 'remove' = 'stop'): Promise<void> {
    this.disposed = true;
    await this.filling?.catch(() => undefined);
    await Promise.all(this.idle.splice(0).map((s) => this.destroy(s)));
    const busy = await Promise.all([...this.byTask.values()].map((p) => p.catch(() => undefined)));
    this.byTask.clear();
    await Promise.all(
      busy
        .filter((s): s is Slot => s !== undefined)
        .map((s) => (mode === 'remove' ? this.destroy(s) : s.sandbox.dispose(mode))),
    );
  }

  private slotFor(taskId: string): Promise<Slot> {
    assertTaskId(taskId);
    let slot = this.byTask.get(taskId);
    if (!slot) {
      slot = this.assign(taskId);
      this.byTask.set(taskId, slot);
      slot.catch(() => this.byTask.delete(taskId));
    }
    return slot;
  }

  private async assign(taskId: string): Promise<Slot> {
    // A task that ran elsewhere before (its worker died) keeps its own slot: same volume, same files.
    const adopted = await this.adopt(taskId);
    if (adopted) {
      await adopted.sandbox.ensure();
      return adopted;
    }
    const slot = this.idle.shift() ?? (await this.makeSlot());
    await this.o.assignments.set(taskId, slot.id);
    void this.fill();
    return slot;
  }

  private async adopt(taskId: string): Promise<Slot | undefined> {
    const id = await this.o.assignments.get(taskId);
    return id ? this.slot(id) : undefined;
  }

  private slot(id: string): Slot {
    const volume = `research-slot-${id}`;
    const labels = { ...this.o.base.labels, [LABEL_POOL_OWNER]: this.o.base.workerId, [LABEL_SLOT]: id };
    const sandbox = new DockerSandbox({ ...this.o.base, workerId: id, volume, labels, docker: this.docker });
    return { id, volume, sandbox };
  }

  private async makeSlot(): Promise<Slot> {
    const slot = this.slot(`${this.o.base.workerId.slice(0, 40)}-t${randomUUID().slice(0, 12)}`);
    // The slot's own volume, labelled with its owner so clean-up and gc can tell whose it is.
    await this.docker.createVolume({
      Name: slot.volume,
      Labels: {
        ...ownLabels({ queuePrefix: this.prefix }),
        [LABEL_VOLUME]: 'slot',
        [LABEL_POOL_OWNER]: this.o.base.workerId,
        [LABEL_SLOT]: slot.id,
      },
    });
    await slot.sandbox.ensure();
    return slot;
  }

  private fill(): Promise<void> {
    this.filling ??= (async () => {
      while (!this.disposed && this.idle.length < this.warmTarget) {
        const slot = await this.makeSlot();
        if (this.disposed) await this.destroy(slot);
        else this.idle.push(slot);
      }
    })()
      .catch((err: unknown) => this.log.warn({ err }, 'could not warm a sandbox slot'))
      .finally(() => {
        this.filling = undefined;
      });
    return this.filling;
  }

  private async destroy(slot: Slot): Promise<void> {
    this.retired += slot.sandbox.restarts;
    await slot.sandbox
      .dispose('remove')
      .catch((err: unknown) => this.log.warn({ err, slot: slot.id }, 'could not remove a slot container'));
    await this.docker
      .getVolume(slot.volume)
      .remove()
      .catch((err: unknown) => this.log.warn({ err, slot: slot.id }, 'could not remove a slot volume'));
  }
}
