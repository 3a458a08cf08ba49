import type { Logger } from '@research/config';
import type { TaskStore, WorkerRegistry } from '@research/queue';
import { collectGarbage, type GcOptions, type GcResult } from '@research/sandbox';

export interface SandboxGcOptions {
  prefix: string;
  registry: WorkerRegistry;
  store: TaskStore;
  /** A worker silent for this long (and without its claim) is dead: the death watch's staleMs. */
  staleMs: number;
  logger: Logger;
  /** Passed on to collectGarbage (minAgeMs, dryRun, docker). */
  gc?: Partial<GcOptions>;
}

/** Garbage collection of dead workers' sandbox objects, judged by the worker registry in Redis. */
export function sandboxGc(o: SandboxGcOptions): () => Promise<GcResult> {
  return () =>
    collectGarbage({
      queuePrefix: o.prefix,
      isLive: (id) => o.registry.isLive(id, o.staleMs),
      lastSeen: (id) => o.registry.lastBeat(id),
      slotInUse: (slot) => o.store.slots.inUse(slot),
      logger: o.logger,
      ...o.gc,
    });
}
