import type { StoredTaskEvent, TaskEvent } from '@research/contracts';
import type { Redis } from '../connection.js';
import { EVENTS_MAX_LEN, type TaskKeys } from './task-keys.js';

/** A task's event stream (a capped Redis stream): what SSE replays and follows. */
export class TaskEvents {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  /** Appends one event; returns its stream id. */
  async append(id: string, event: TaskEvent): Promise<string> {
    const streamId = await this.redis.xadd(
      this.keys.events(id),
      'MAXLEN',
      '~',
      EVENTS_MAX_LEN,
      '*',
      'e',
      JSON.stringify(event),
    );
    return streamId ?? '';
  }

  /** Events after `afterId` (exclusive), oldest first. */
  async read(id: string, afterId = '-', count = 500): Promise<StoredTaskEvent[]> {
    const start = afterId === '-' ? '-' : `(${afterId}`;
    const rows = await this.redis.xrange(this.keys.events(id), start, '+', 'COUNT', count);
    return rows.map(([streamId, fields]) => ({ id: streamId, event: JSON.parse(fields[1] ?? '{}') as TaskEvent }));
  }

  /**
   * Waits up to `blockMs` for events after `afterId` on a connection of its own (XREAD BLOCK
   * holds the connection).
   */
  async wait(blocking: Redis, id: string, afterId: string, blockMs: number): Promise<StoredTaskEvent[]> {
    const res = (await blocking.xread(
      'COUNT',
      500,
      'BLOCK',
      blockMs,
      'STREAMS',
      this.keys.events(id),
      afterId === '-' ? '0' : afterId,
    )) as [string, [string, string[]][]][] | null;
    const rows = res?.[0]?.[1] ?? [];
    return rows.map(([streamId, fields]) => ({ id: streamId, event: JSON.parse(fields[1] ?? '{}') as TaskEvent }));
  }
}
