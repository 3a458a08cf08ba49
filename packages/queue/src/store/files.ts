import type { Redis } from '../connection.js';
import { FOOTPRINT_FIELDS } from './footprint.js';
import { UNFINISHED_TTL_S, type TaskKeys } from './task-keys.js';

export interface StoredFile {
  path: string;
  size: number;
  /** The bytes, when the file fitted in the task's kept-files budget. */
  content?: Buffer;
}

/** A kept file as listed: `stored` says whether its bytes are in Redis (or only its name and size). */
export interface ListedFile {
  path: string;
  size: number;
  stored: boolean;
}

/** The field of the record hash that lists the kept files. */
const LIST_FIELD = 'files';

/** A task's files, kept in Redis so the API serves them after the worker or its container is gone. */
export class TaskFiles {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  /** Replaces the kept files with `files` (a snapshot of the workspace); returns their list, as `list` reads it. */
  async save(id: string, files: StoredFile[]): Promise<ListedFile[]> {
    const key = this.keys.files(id);
    const list: ListedFile[] = files.map((f) => ({ path: f.path, size: f.size, stored: f.content !== undefined }));
    const listed = JSON.stringify(list);
    // What the snapshot keeps counts against TASK_MAX_REDIS_BYTES (it replaces the one before).
    const bytes = files.reduce((sum, f) => sum + (f.content?.length ?? 0) + Buffer.byteLength(f.path), listed.length);
    const m = this.redis.multi().del(key).hset(this.keys.record(id), LIST_FIELD, listed, FOOTPRINT_FIELDS.files, bytes);
    for (const f of files) if (f.content !== undefined) m.hset(key, `f:${f.path}`, f.content);
    m.expire(key, UNFINISHED_TTL_S);
    await m.exec();
    return list;
  }

  /** The kept files, or undefined when none were ever saved. */
  async list(id: string): Promise<ListedFile[] | undefined> {
    const raw = await this.redis.hget(this.keys.record(id), LIST_FIELD);
    return raw ? (JSON.parse(raw) as ListedFile[]) : undefined;
  }

  /** A stored file's bytes; lookup is by exact key, never through a filesystem. */
  async read(id: string, path: string): Promise<Buffer | undefined> {
    return (await this.redis.hgetBuffer(this.keys.files(id), `f:${path}`)) ?? undefined;
  }
}
