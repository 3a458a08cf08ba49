import Dockerode from 'dockerode';
import { createLogger, type Logger } from '@research/config';
import { dockerStatus, toSandboxError } from './docker-errors.js';
import { LABEL_PREFIX, LABEL_SANDBOX, LABEL_SLOT, LABEL_VOLUME, ownerOf } from './labels.js';

/** How `collectGarbage` tells what is still wanted. Everything but `queuePrefix` and `isLive` has a default. */
export interface GcOptions {
  /** The deployment's queue prefix: only objects labelled `research.prefix=<it>` are looked at. */
  queuePrefix: string;
  /** Whether a worker id is alive (it beats into the registry or holds its claim). */
  isLive: (workerId: string) => Promise<boolean>;
  /** When a dead worker last beat (ms since the epoch), if the registry still knows. Default: unknown. */
  lastSeen?: (workerId: string) => Promise<number | undefined>;
  /** Whether a pool slot was given to a task that is not over (it may resume in it). Default: never. */
  slotInUse?: (slotId: string) => Promise<boolean>;
  /**
   * An object goes only when it, and its owner's last beat when known, are older than this: a
   * worker restarted by its supervisor finds its container again. Default: 3_600_000 (1 h).
   */
  minAgeMs?: number;
  /** List what would go without removing anything. Default: false. */
  dryRun?: boolean;
  /** Docker client. Default: `new Dockerode()`. */
  docker?: Dockerode;
  /** Logger. Default: silent. */
  logger?: Logger;
}

/** One container or volume that gc looked at. */
export interface GcItem {
  kind: 'container' | 'volume';
  /** Container name or volume name. */
  name: string;
  /** The worker that owns it (a slot's: the worker that made the slot). */
  owner: string;
  /** Why it goes, or why it stays. */
  reason: string;
}

export interface GcResult {
  /** Removed (or, with dryRun, what would be). */
  removed: GcItem[];
  kept: GcItem[];
}

export const GC_MIN_AGE_MS = 3_600_000;

/**
 * Removes the sandbox containers and per-task slot volumes of workers that are long dead, on the
 * local engine. An object is a candidate only with `research.sandbox=true`, this deployment's
 * `research.prefix` and an owner label; it stays while its owner is alive, while its slot holds
 * a task that is not over, and while it or its owner's last beat is younger than `minAgeMs`. The
 * shared workspace volume (SANDBOX_VOLUME) is never removed here: every worker mounts it.
 */
export async function collectGarbage(options: GcOptions): Promise<GcResult> {
  const docker = options.docker ?? new Dockerode();
  const log = (options.logger ?? createLogger({ level: 'silent', pretty: false })).child({ component: 'sandbox-gc' });
  const minAgeMs = options.minAgeMs ?? GC_MIN_AGE_MS;
  const now = Date.now();
  const filters = { label: [`${LABEL_SANDBOX}=true`, `${LABEL_PREFIX}=${options.queuePrefix}`] };
  const result: GcResult = { removed: [], kept: [] };

  const live = new Map<string, Promise<boolean>>();
  const isLive = (id: string) => {
    const known = live.get(id);
    if (known) return known;
    const p = options.isLive(id);
    live.set(id, p);
    return p;
  };
  /** Why an object of `owner` (made at `createdMs`, of `slot`) stays; undefined when it goes. */
  const keepReason = async (owner: string, createdMs: number, slot: string | undefined) => {
    if (await isLive(owner)) return `worker ${owner} is alive`;
    if (slot !== undefined && (await options.slotInUse?.(slot))) return `slot ${slot} holds a task that is not over`;
    const seen = Math.max(createdMs, (await options.lastSeen?.(owner)) ?? 0);
    if (now - seen < minAgeMs) return `younger than ${Math.round(minAgeMs / 60_000)} min`;
    return undefined;
  };

  let containers: Dockerode.ContainerInfo[];
  try {
    containers = await docker.listContainers({ all: true, filters });
  } catch (err) {
    throw toSandboxError(err, 'list containers');
  }
  /** Volumes mounted by a container that stays: never removed under it. */
  const mounted = new Set<string>();
  for (const c of containers) {
    const owner = ownerOf(c.Labels);
    const name = (c.Names[0] ?? c.Id).replace(/^\//, '');
    if (owner === undefined) continue;
    const why = await keepReason(owner, c.Created * 1000, c.Labels[LABEL_SLOT]);
    const item: GcItem = { kind: 'container', name, owner, reason: why ?? `worker ${owner} is dead` };
    if (why !== undefined) {
      for (const m of c.Mounts ?? []) if (m.Name) mounted.add(m.Name);
      result.kept.push(item);
      continue;
    }
    if (!options.dryRun) {
      try {
        await docker.getContainer(c.Id).remove({ force: true });
      } catch (err) {
        if (dockerStatus(err) !== 404) throw toSandboxError(err, `remove container ${name}`);
      }
    }
    result.removed.push(item);
  }

  let volumes: Dockerode.VolumeInspectInfo[];
  try {
    volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
  } catch (err) {
    throw toSandboxError(err, 'list volumes');
  }
  for (const v of volumes) {
    const labels = v.Labels ?? {};
    const slot = labels[LABEL_SLOT];
    const owner = ownerOf(labels);
    // The shared workspace volume has no owner, and a volume of ours that is not a slot's is not per task.
    if (labels[LABEL_VOLUME] !== 'slot' || slot === undefined || owner === undefined) continue;
    const created = Date.parse((v as { CreatedAt?: string }).CreatedAt ?? '');
    const why = mounted.has(v.Name)
      ? 'mounted by a container that stays'
      : await keepReason(owner, Number.isNaN(created) ? now : created, slot);
    const item: GcItem = { kind: 'volume', name: v.Name, owner, reason: why ?? `worker ${owner} is dead` };
    if (why !== undefined) {
      result.kept.push(item);
      continue;
    }
    if (!options.dryRun) {
      try {
        await docker.getVolume(v.Name).remove();
      } catch (err) {
        const status = dockerStatus(err);
        if (status === 409) {
          result.kept.push({ ...item, reason: 'in use by a container' });
          continue;
        }
        if (status !== 404) throw toSandboxError(err, `remove volume ${v.Name}`);
      }
    }
    result.removed.push(item);
  }
  if (result.removed.length > 0)
    log.info(
      { dryRun: options.dryRun ?? false, removed: result.removed.map((i) => `${i.kind} ${i.name} (${i.owner})`) },
      options.dryRun ? 'sandbox objects of dead workers (dry run)' : 'removed sandbox objects of dead workers',
    );
  return result;
}
