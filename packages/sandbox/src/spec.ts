import type Dockerode from 'dockerode';
import { LABEL_SPEC } from './labels.js';

/**
 * The part of a container's create spec that decides what runs and how hardened it is, recorded
 * on the container (label `research.spec`) so that a worker finding its container can tell,
 * field by field, whether it is still what the configuration asks for. The image is compared by
 * the ID the container runs, not by this record (a tag can be rebuilt under the same name).
 */
export interface SpecRecord {
  network: string;
  memoryBytes: number;
  swapBytes: number;
  nanoCpus: number;
  pids: number;
  capDrop: string[];
  capAdd: string[];
  securityOpt: string[];
  init: boolean;
  readonlyRootfs: boolean;
  mounts: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir: string;
}

/** One way a found container differs from the configuration. */
export interface Drift {
  field: keyof SpecRecord | 'image' | 'spec';
  want: string;
  have: string;
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The record of a create spec (createSpec's output, so the hardening has one owner). */
export function specRecord(spec: Dockerode.ContainerCreateOptions): SpecRecord {
  const h = spec.HostConfig ?? {};
  return {
    network: h.NetworkMode ?? '',
    memoryBytes: h.Memory ?? 0,
    swapBytes: h.MemorySwap ?? 0,
    nanoCpus: h.NanoCpus ?? 0,
    pids: h.PidsLimit ?? 0,
    // Sorted: the order of capabilities and options means nothing to the engine.
    capDrop: [...(h.CapDrop ?? [])].sort(),
    capAdd: [...(h.CapAdd ?? [])].sort(),
    securityOpt: [...(h.SecurityOpt ?? [])].sort(),
    init: h.Init ?? false,
    readonlyRootfs: h.ReadonlyRootfs ?? false,
    mounts: (h.Mounts ?? []).map((m) => `${m.Type}:${m.Source}:${m.Target}${m.ReadOnly ? ':ro' : ''}`).sort(),
    entrypoint: list(spec.Entrypoint),
    cmd: list(spec.Cmd),
    workingDir: spec.WorkingDir ?? '',
  };
}

/**
 * How the container's recorded spec differs from `wanted`: one entry per field. A container with
 * no record (made before specs were recorded, or by hand) differs as a whole.
 */
export function specDrift(labels: Record<string, string> | undefined, wanted: SpecRecord): Drift[] {
  const raw = labels?.[LABEL_SPEC];
  let have: Partial<SpecRecord> | undefined;
  try {
    have = raw === undefined ? undefined : (JSON.parse(raw) as Partial<SpecRecord>);
  } catch {
    have = undefined;
  }
  if (!have || typeof have !== 'object')
    return [{ field: 'spec', want: 'a recorded create spec', have: raw === undefined ? 'none' : 'unreadable' }];
  const drift: Drift[] = [];
  for (const field of Object.keys(wanted) as (keyof SpecRecord)[]) {
    const w = JSON.stringify(wanted[field]);
    const h = JSON.stringify(have[field] ?? null);
    if (w !== h) drift.push({ field, want: w, have: h });
  }
  return drift;
}

/** The image drift, when the container runs another image ID than `wantedId` (what SANDBOX_IMAGE resolves to now). */
export function imageDrift(
  container: Pick<Dockerode.ContainerInspectInfo, 'Image' | 'Config'>,
  wanted: { name: string; id: string },
): Drift | undefined {
  if (container.Image === wanted.id) return undefined;
  return {
    field: 'image',
    want: `${wanted.name} (${shortId(wanted.id)})`,
    have: `${container.Config.Image} (${shortId(container.Image)})`,
  };
}

/** One line for a log: `image: want …, have …; memoryBytes: want …, have …`. */
export function describeDrift(drift: readonly Drift[]): string {
  return drift.map((d) => `${d.field}: want ${d.want}, have ${d.have}`).join('; ');
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
