import type { Redis } from '../connection.js';
import { LuaScript } from './lua.js';
import { idempotencyKey } from './idempotency.js';
import { TaskKeys } from './task-keys.js';

/**
 * KEYS: the tenant's queued set, its reconcile marker, then the idempotency keys of the tasks
 * that have one. ARGV: now (ms), limit, task key prefix, grace (ms), set TTL (s), then per task:
 * its id and the KEYS index of its idempotency key (0: none). The tasks are admitted in order, as
 * one call each would be. Returns per task 1 admitted, 0 full, 2 a repeat of an idempotent submit
 * (not counted again).
 */
const ADMIT = new LuaScript<number[]>(
  'researchAdmitQueued',
  `local now, limit, grace = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local out, count, added = {}, redis.call('ZCARD', KEYS[1]), false
for a = 6, #ARGV, 2 do
  local idem = tonumber(ARGV[a + 1])
  if idem > 0 and redis.call('EXISTS', KEYS[idem]) == 1 then
    out[#out + 1] = 2
  else
    if count >= limit and redis.call('SET', KEYS[2], '1', 'PX', ${1_000}, 'NX') then
      local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
      for i = 1, #members, 2 do
        local status = redis.call('HGET', ARGV[3] .. members[i], 'status')
        if (status and status ~= 'queued') or (not status and tonumber(members[i + 1]) < now - grace) then
          redis.call('ZREM', KEYS[1], members[i])
        end
      end
      count = redis.call('ZCARD', KEYS[1])
    end
    if count >= limit then
      out[#out + 1] = 0
    else
      count = count + redis.call('ZADD', KEYS[1], now, ARGV[a])
      added = true
      out[#out + 1] = 1
    end
  end
end
if added then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
return out`,
);

/** A task counted before its record exists is not taken for expired within this long. */
const RECORD_GRACE_MS = 60_000;
/** The set outlives any task in it (unfinished records live 30 days). */
const SET_TTL_S = 31 * 86_400;

export type Admission = 'admitted' | 'full' | 'repeat';

/**
 * `TENANT_MAX_QUEUED`: how many of a tenant's tasks may wait to start. Each admitted task's id
 * goes into a per-tenant sorted set in one Lua script that counts and adds atomically, so
 * concurrent submits (from any number of API processes) cannot overshoot.
 *
 * The count is kept right without every writer of a task's status having to know about it: a
 * task stops counting as soon as its record leaves `queued` (a worker started it, it was
 * cancelled, it failed to enqueue) or disappears (expired). Those entries are dropped when they
 * matter — when the set is at the limit — by one pass over it that reads each status. The pass
 * is O(limit), so it runs at most once a second per tenant; a tenant that is really full is
 * refused from the count alone. The API also drops an entry at once where it knows (cancel,
 * enqueue failure).
 */
export class QueuedQuota {
  private readonly keys: TaskKeys;

  constructor(
    private readonly redis: Redis,
    /** The queue prefix the tasks' records live under. */
    prefix: string,
    /** 0 = no limit. */
    readonly limit: number,
  ) {
    this.keys = new TaskKeys(prefix);
  }

  private setKey(tenant: string): string {
    return `${this.keys.prefix}:tenant:${tenant}:queued`;
  }

  /**
   * Counts each task against its tenant's limit, in order, unless the tenant is at it or the
   * submit repeats one whose idempotency key (`idempotencyHash`, hashed as the store keeps it)
   * already names a task. One script call for the whole list.
   */
  async admit(tenant: string, tasks: readonly { id: string; idempotencyHash?: string }[]): Promise<Admission[]> {
    if (this.limit === 0 || tasks.length === 0) return tasks.map(() => 'admitted');
    const set = this.setKey(tenant);
    const keys = [set, `${set}:checked`];
    const args: (string | number)[] = [Date.now(), this.limit, this.keys.record(''), RECORD_GRACE_MS, SET_TTL_S];
    for (const { id, idempotencyHash } of tasks) {
      if (idempotencyHash === undefined) args.push(id, 0);
      else args.push(id, keys.push(idempotencyKey(this.keys.prefix, idempotencyHash)));
    }
    const outcomes = await ADMIT.run(this.redis, keys, args);
    return outcomes.map((o) => (o === 1 ? 'admitted' : o === 2 ? 'repeat' : 'full'));
  }

  /** Counts a task that was created without being admitted (its idempotency key expired meanwhile). */
  async add(tenant: string, id: string): Promise<void> {
    if (this.limit === 0) return;
    await this.redis.zadd(this.setKey(tenant), Date.now(), id);
  }

  /** Stops counting a task (it was never created, was cancelled, or could not be queued). */
  async release(tenant: string, id: string): Promise<void> {
    if (this.limit === 0) return;
    await this.redis.zrem(this.setKey(tenant), id);
  }

  /** Tasks counted now (entries that already left `queued` included until the next pass). */
  async counted(tenant: string): Promise<number> {
    return this.redis.zcard(this.setKey(tenant));
  }
}
