import type { Redis } from '../connection.js';
import type { TaskKeys } from './task-keys.js';

/**
 * Fields of the task's record hash that count what the task keeps in Redis: `redisBytes` grows
 * with every event and step outcome written (events trimmed from the capped stream stay counted,
 * so the figure errs high), `fileBytes` is set to the size of the latest file snapshot.
 */
export const FOOTPRINT_FIELDS = { written: 'redisBytes', files: 'fileBytes' } as const;

/** What a task keeps in Redis, in bytes: its events and step outcomes, and its kept files. */
export interface Footprint {
  writtenBytes: number;
  fileBytes: number;
}

export function footprintOf(written: unknown, files: unknown): Footprint {
  return { writtenBytes: Number(written ?? 0) || 0, fileBytes: Number(files ?? 0) || 0 };
}

/** The total `TASK_MAX_REDIS_BYTES` is held against. */
export function totalBytes(f: Footprint): number {
  return f.writtenBytes + f.fileBytes;
}

/** Reads a task's footprint (the writers count it as they write: events, steps, files). */
export class TaskFootprint {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  async get(id: string): Promise<Footprint> {
    const [written, files] = await this.redis.hmget(
      this.keys.record(id),
      FOOTPRINT_FIELDS.written,
      FOOTPRINT_FIELDS.files,
    );
    return footprintOf(written, files);
  }
}
