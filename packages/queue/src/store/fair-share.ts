import { DEFAULT_TENANT } from '@research/config';
import { Job, type Queue } from 'bullmq';
import { jobLockKeyPrefix, waitingKeys } from '../bullmq-internals.js';
import { FAIR_TAG_SPAN, fairTagOf } from '../catalog.js';
import type { Redis } from '../connection.js';
import { LuaScript } from './lua.js';
import { AGENT_QUEUE } from '../names.js';
import { TaskKeys } from './task-keys.js';

/**
 * Fair order: KEYS clock, tags, then the agent queue's wait list, prioritized and delayed sets.
 * ARGV tenant, reset threshold, highest tag, how many tasks. Returns the first task's tag (the
 * others follow it one by one).
 */
const TAG = new LuaScript<number>(
  'researchFairTag',
  `local clock = tonumber(redis.call('GET', KEYS[1]) or '0')
if clock >= tonumber(ARGV[2]) and redis.call('LLEN', KEYS[3]) == 0 and redis.call('ZCARD', KEYS[4]) == 0
  and redis.call('ZCARD', KEYS[5]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  clock = 0
end
local tag = math.max(clock, tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')) + 1
local last = tag + tonumber(ARGV[4]) - 1
if tag > tonumber(ARGV[3]) then tag = tonumber(ARGV[3]) end
if last > tonumber(ARGV[3]) then last = tonumber(ARGV[3]) end
redis.call('HSET', KEYS[2], ARGV[1], last)
return tag`,
);

/**
 * The live running slots of a tenant (ARGV prefix of lock keys): a slot whose job no longer holds
 * its lock with the slot's token is dropped. That is what gives a killed worker's slots back:
 * its locks expire (WORKER_LOCK_MS) and the next look at the tenant's slots forgets them.
 */
const LIVE = `local function live(slots, lockPrefix, except)
  local held = redis.call('HGETALL', slots)
  local n = 0
  for i = 1, #held, 2 do
    if held[i] ~= except then
      if redis.call('GET', lockPrefix .. held[i] .. ':lock') == held[i + 1] then n = n + 1
      else redis.call('HDEL', slots, held[i]) end
    end
  end
  return n
end
local function promotable(slots, parked, lockPrefix, limit, parkedTenants, tenant)
  local free = limit - live(slots, lockPrefix, '')
  local ids = {}
  if free > 0 then
    local popped = redis.call('ZPOPMIN', parked, free)
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  end
  if redis.call('ZCARD', parked) == 0 then redis.call('SREM', parkedTenants, tenant) end
  return ids
end
`;

/**
 * A task job about to run. KEYS record, clock. ARGV task id, lock token, limit, the job's
 * priority, lock key prefix, tenant key prefix, default tenant, slots TTL (s).
 * Returns {1, tenant} (it holds a slot now, or there is no limit) or {0, tenant, running}.
 */
const ENTER = new LuaScript<[number, string, number?]>(
  'researchFairEnter',
  `${LIVE}
local tenant = redis.call('HGET', KEYS[1], 'tenant') or ARGV[7]
local limit = tonumber(ARGV[3])
if limit > 0 then
  local slots = ARGV[6] .. tenant .. ':running'
  local running = live(slots, ARGV[5], ARGV[1])
  if running >= limit then return {0, tenant, running} end
  redis.call('HSET', slots, ARGV[1], ARGV[2])
  redis.call('EXPIRE', slots, ARGV[8])
  redis.call('ZREM', ARGV[6] .. tenant .. ':parked', ARGV[1])
end
local priority = tonumber(ARGV[4])
if priority > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], priority) end
return {1, tenant}`,
);

/**
 * A refused task parked (its job already moved to delayed), or a run that ended and gives its
 * slot back. KEYS the tenants-with-parked-tasks set. ARGV tenant, task id, lock token ('' for a
 * park), tag (for a park), limit, lock key prefix, tenant key prefix.
 * Returns the parked tasks to promote into the slots that are free now.
 */
const PARK_OR_LEAVE = new LuaScript<string[]>(
  'researchFairPark',
  `${LIVE}
local slots = ARGV[7] .. ARGV[1] .. ':running'
local parked = ARGV[7] .. ARGV[1] .. ':parked'
if ARGV[3] == '' then
  redis.call('ZADD', parked, ARGV[4], ARGV[2])
  redis.call('SADD', KEYS[1], ARGV[1])
elseif redis.call('HGET', slots, ARGV[2]) == ARGV[3] then
  redis.call('HDEL', slots, ARGV[2])
end
return promotable(slots, parked, ARGV[6], tonumber(ARGV[5]), KEYS[1], ARGV[1])`,
);

/** Every tenant with parked tasks: KEYS that set; ARGV limit, lock key prefix, tenant key prefix. */
const RECONCILE = new LuaScript<string[]>(
  'researchFairReconcile',
  `${LIVE}
local ids = {}
for _, tenant in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local got = promotable(ARGV[3] .. tenant .. ':running', ARGV[3] .. tenant .. ':parked', ARGV[2],
    tonumber(ARGV[1]), KEYS[1], tenant)
  for _, id in ipairs(got) do ids[#ids + 1] = id end
end
return ids`,
);

/** Tags are set back to 1 once the clock passed this and nothing waits, long before FAIR_TAG_SPAN. */
const RESET_TAGS_AT = FAIR_TAG_SPAN / 2;
/** A slot set outlives any run in it; stale slots are dropped by the lock check long before. */
const SLOTS_TTL_S = 31 * 86_400;
/**
 * How long a parked task waits at most before it asks again on its own. It is normally promoted
 * the moment a slot of its tenant frees (the run that ends promotes it; workers reconcile on
 * every heartbeat), so this only bounds the wait of a promotion lost with its process.
 */
const PARKED_FALLBACK_MS = 120_000;

/** A task job's turn at the gate: it may run (`admitted`), or its tenant is at its running limit. */
export interface Entry {
  admitted: boolean;
  tenant: string;
  /** Tasks of the tenant running elsewhere when it was refused. */
  running?: number;
}

export interface FairShareOptions {
  /** `TENANT_MAX_RUNNING`: tasks of one tenant running at once. Default: 0 (no limit). */
  maxRunning?: number;
  /** The agent queue, for promoting parked task jobs (workers only; the API only tags). */
  queue?: Queue;
}

/**
 * Fair share of the workers between tenants, on BullMQ's open-source queue, which has no groups.
 *
 * **Order.** Each task gets a tag when it is submitted: one more than the later of its tenant's
 * previous tag and the clock (the highest tag started so far), and goes into the queue with that
 * tag inside its BullMQ priority (lower runs first, FIFO among equals; a task's own `priority` is
 * the band above the tag, see bullmqPriority). That is start-time fair
 * queuing: a tenant's n-th waiting task competes with every other tenant's n-th, so a tenant that
 * submits 5 tasks behind another's 500 has its first start next to the 500's next one, not after
 * all of them; and a tenant back from idle starts at the clock, with no credit saved up. Tags
 * go back to 1 once past 2^16 when nothing waits (a band spans 2^17 tags; past that they are
 * clamped and the order within the band is FIFO until the queue drains).
 *
 * **Running limit.** With `maxRunning`, a worker takes a slot of the task's tenant before it runs
 * it (one script: count the live slots, take one). A task that gets none is parked: its job is
 * moved back to delayed (its tag, hence its place, kept) and listed per tenant; the run that gives a
 * slot back promotes the tenant's first parked task into it, and every worker reconciles on its
 * heartbeat. A slot is the task's id with its job's lock token: it is live while that lock holds
 * that token, so a killed worker's slots come back when its locks expire, a task resumed
 * elsewhere (new token, same id) counts once, and a run that ends frees its slot in any case.
 */
export class FairShare {
  private readonly keys: TaskKeys;
  readonly maxRunning: number;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly options: FairShareOptions = {},
  ) {
    this.keys = new TaskKeys(prefix);
    this.maxRunning = options.maxRunning ?? 0;
  }

  private key(name: string): string {
    return `${this.keys.prefix}:fair:${name}`;
  }

  private tenantPrefix(): string {
    return `${this.keys.prefix}:tenant:`;
  }

  private lockPrefix(): string {
    return jobLockKeyPrefix(`${this.keys.prefix}:${AGENT_QUEUE}`);
  }

  /** The fair-share tag of a new task of `tenant` (see the class); of `count` new ones, the first. */
  async tag(tenant: string, count = 1): Promise<number> {
    const waiting = waitingKeys(this.keys.prefix, AGENT_QUEUE);
    return TAG.run(
      this.redis,
      [this.key('clock'), this.key('tags'), waiting.wait, waiting.prioritized, waiting.delayed],
      [tenant, RESET_TAGS_AT, FAIR_TAG_SPAN - 1, count],
    );
  }

  /** Called by the worker that got task job `job`, before it runs it. */
  async enter(job: Job): Promise<Entry> {
    const [admitted, tenant, running] = await ENTER.run(
      this.redis,
      [this.keys.record(job.id ?? ''), this.key('clock')],
      [
        job.id ?? '',
        job.token ?? '',
        this.maxRunning,
        fairTagOf(job.opts.priority ?? 0),
        this.lockPrefix(),
        this.tenantPrefix(),
        DEFAULT_TENANT,
        SLOTS_TTL_S,
      ],
    );
    return admitted === 1 ? { admitted: true, tenant } : { admitted: false, tenant, running: running ?? 0 };
  }

  /**
   * Moves a refused task's job back to delayed, keeping its priority, and lists it with its
   * tenant's parked tasks. The processor then throws BullMQ's `DelayedError`.
   */
  async park(job: Job, tenant: string): Promise<void> {
    if (!job.token || !job.id) throw new Error(`task job ${job.id ?? '?'} is not being processed`);
    const jitterMs = Math.floor(Math.random() * (PARKED_FALLBACK_MS / 4));
    await job.moveToDelayed(Date.now() + PARKED_FALLBACK_MS + jitterMs, job.token);
    // Listed only once it is delayed: a slot freed in between then promotes it here.
    await this.promote(await this.parkOrLeave(tenant, job.id, '', job.opts.priority ?? 0));
  }

  /** A run of `job` ended here: its slot goes back, and the tenant's first parked task takes it. */
  async leave(job: Job, tenant: string): Promise<void> {
    if (this.maxRunning === 0 || !job.id || !job.token) return;
    await this.promote(await this.parkOrLeave(tenant, job.id, job.token, 0));
  }

  /** Promotes parked tasks into the slots free now, for every tenant (workers call it on their heartbeat). */
  async reconcile(): Promise<number> {
    if (this.maxRunning === 0) return 0;
    return this.promote(await this.promotable());
  }

  private promotable(): Promise<string[]> {
    return RECONCILE.run(this.redis, [this.key('parked')], [this.maxRunning, this.lockPrefix(), this.tenantPrefix()]);
  }

  /** Ids of the tasks of `tenant` holding a running slot now (stale slots not yet dropped included). */
  async slots(tenant: string): Promise<string[]> {
    return this.redis.hkeys(`${this.tenantPrefix()}${tenant}:running`);
  }

  private parkOrLeave(tenant: string, id: string, token: string, tag: number): Promise<string[]> {
    return PARK_OR_LEAVE.run(
      this.redis,
      [this.key('parked')],
      [tenant, id, token, tag, this.maxRunning, this.lockPrefix(), this.tenantPrefix()],
    );
  }

  /**
   * Moves parked task jobs from delayed to the queue, where their tags put them first. One that
   * is not delayed any more (already back on its own, or cancelled) is skipped.
   */
  private async promote(ids: string[], again = true): Promise<number> {
    const queue = this.options.queue;
    if (!queue || ids.length === 0) return 0;
    let promoted = 0;
    let gone = 0;
    for (const id of ids) {
      const job = await Job.fromId(queue, id);
      if (!job) gone++;
      if (!job || (await job.getState()) !== 'delayed') continue;
      await job.promote().then(
        () => promoted++,
        () => undefined,
      );
    }
    // A cancelled task took a free slot's promotion for nothing: look once more, so the next one gets it.
    if (gone > 0 && again) promoted += await this.promote(await this.promotable(), false);
    return promoted;
  }
}
