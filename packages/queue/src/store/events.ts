import type { StepOutcome, StoredTaskEvent, TaskEvent } from '@research/contracts';
import type { Redis } from '../connection.js';
import { LuaScript } from './lua.js';
import { FOOTPRINT_FIELDS, type Footprint, footprintOf } from './footprint.js';
import { EVENTS_MAX_LEN, type TaskKeys } from './task-keys.js';

/**
 * KEYS: events, outcomes, record. ARGV: max length, the event, the event without its outcome,
 * the step ('' for any other event). A `tool_result` whose outcome the step already recorded is
 * kept without it: a command's output is stored once, in the outcomes hash, and put back on read.
 * Counts the bytes written into the record's footprint (when the record exists) and returns
 * {stream id, written bytes, file bytes}.
 */
const APPEND = new LuaScript<[string, number, number | string]>(
  'researchAppendEvent',
  `local event = ARGV[2]
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then event = ARGV[3] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', event)
if redis.call('EXISTS', KEYS[3]) == 0 then return {id, 0, 0} end
local written = redis.call('HINCRBY', KEYS[3], '${FOOTPRINT_FIELDS.written}', #event)
return {id, written, redis.call('HGET', KEYS[3], '${FOOTPRINT_FIELDS.files}') or 0}`,
);

/** A step outcome gone from the outcomes hash (it cannot be, while the events are kept: they share the retention). */
const LOST_OUTCOME: StepOutcome = {
  ok: false,
  error: { code: 'internal', message: 'the outcome of this step is no longer kept' },
};

/** A task's event stream (a capped Redis stream): what SSE replays and follows. */
export class TaskEvents {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  /** Appends one event; returns its stream id. */
  async append(id: string, event: TaskEvent): Promise<string> {
    return (await this.appendAndCount(id, event)).streamId;
  }

  /** Appends one event; returns its stream id and the task's footprint after it (see `Footprint`). */
  async appendAndCount(id: string, event: TaskEvent): Promise<{ streamId: string; footprint: Footprint }> {
    const full = JSON.stringify(event);
    let stripped = '';
    let step = '';
    if (event.type === 'tool_result') {
      const { outcome: _outcome, ...rest } = event;
      stripped = JSON.stringify(rest);
      step = String(event.step);
    }
    const [streamId, written, files] = await APPEND.run(
      this.redis,
      [this.keys.events(id), this.keys.outcomes(id), this.keys.record(id)],
      [EVENTS_MAX_LEN, full, stripped, step],
    );
    return { streamId, footprint: footprintOf(written, files) };
  }

  /** Events after `afterId` (exclusive), oldest first. */
  async read(id: string, afterId = '-', count = 500): Promise<StoredTaskEvent[]> {
    const start = afterId === '-' ? '-' : `(${afterId}`;
    const rows = await this.redis.xrange(this.keys.events(id), start, '+', 'COUNT', count);
    return this.hydrate(id, rows);
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
    return this.hydrate(id, res?.[0]?.[1] ?? []);
  }

  /** Parses stream rows, putting back the outcomes that `tool_result` events were kept without. */
  private async hydrate(id: string, rows: [string, string[]][]): Promise<StoredTaskEvent[]> {
    const events = rows.map(([streamId, fields]) => ({
      id: streamId,
      event: JSON.parse(fields[1] ?? '{}') as TaskEvent,
    }));
    const bare = events.filter(({ event }) => event.type === 'tool_result' && event.outcome === undefined);
    if (bare.length === 0) return events;
    const steps = bare.map(({ event }) => String((event as { step: number }).step));
    const outcomes = await this.redis.hmget(this.keys.outcomes(id), ...steps);
    bare.forEach(({ event }, i) => {
      const raw = outcomes[i];
      (event as { outcome: StepOutcome }).outcome = raw ? (JSON.parse(raw) as StepOutcome) : LOST_OUTCOME;
    });
    return events;
  }
}
