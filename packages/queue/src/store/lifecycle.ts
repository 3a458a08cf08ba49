import {
  FINAL_STATUSES,
  type TaskError,
  type TaskEvent,
  type TaskProgress,
  type TaskRequest,
  type TaskResult,
  type TaskStatus,
  type TaskWebhook,
} from '@research/contracts';
import { DEFAULT_TENANT } from '@research/config';
import type { Redis } from '../connection.js';
import type { Idempotency } from './idempotency.js';
import { LuaScript, WORDS_LUA } from './lua.js';
import { statsKey, tenantStatsKey } from './stats.js';
import { INDEX_LUA, indexPosition, promptPreview, type TaskIndex } from './task-index.js';
import type { TaskWebhooks } from './webhooks.js';
import { EVENTS_MAX_LEN, type TaskKeys, UNFINISHED_TTL_S } from './task-keys.js';

/** What a new task's record starts with. One object, so a field can be added without touching callers. */
export interface NewTask {
  id: string;
  /** The submit; its `files` are kept apart (`TaskStore.inputs`) until the worker has placed them. */
  request: TaskRequest;
  createdAt: string;
  /** The task's step budget (the request's, or the default). */
  maxSteps: number;
  /** The hashed Idempotency-Key, when the request had one. */
  idempotencyHash?: string;
  /** The tenant of the API key that submitted it (`records.tenant(id)` reads it back). */
  tenant?: string;
  /** Where its webhook deliveries go (its own, or its tenant's default). */
  webhook?: TaskWebhook;
}

export interface CreatedTask {
  /** The new task's id, or the earlier task's that the idempotency key names. */
  id: string;
  created: boolean;
  /** False when the idempotency key was first used for a different request. */
  sameRequest: boolean;
}

/** What a status change may carry into the record and its `status` event. */
export interface StatusDetails {
  workerId?: string;
  result?: TaskResult;
  error?: TaskError;
}

/** A task's status: its creation as `queued`, then every change, each with its `status` event. */
export class TaskLifecycle {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
    private readonly idempotency: Idempotency,
    private readonly index: TaskIndex,
    private readonly retentionSeconds: number,
    private readonly webhooks: TaskWebhooks,
  ) {}

  /**
   * Creates the record unless the idempotency key already names a task; returns the task's id
   * and whether it is new.
   */
  async create(task: NewTask): Promise<CreatedTask> {
    const [created] = await this.createMany([task]);
    return created!;
  }

  /**
   * {@link create} for many tasks: the idempotency claims go out together, then every new record,
   * its first event and its index entries in one script (one command, where a MULTI of the same
   * writes was a dozen per task, each a command object and a write on the client). Results are in
   * the order of `tasks`.
   */
  async createMany(tasks: readonly NewTask[]): Promise<CreatedTask[]> {
    // The whole request, files included: the same prompt with other files is another request.
    const claims = await Promise.all(
      tasks.map((t) => (t.idempotencyHash ? this.idempotency.claim(t.idempotencyHash, t.id, t.request) : undefined)),
    );
    const keys = [statsKey(this.keys.prefix), tenantStatsKey(this.keys.prefix)];
    const args: (string | number)[] = [UNFINISHED_TTL_S, EVENTS_MAX_LEN, this.index.ttlSeconds];
    const results = tasks.map((task, i): CreatedTask => {
      const claim = claims[i];
      if (claim && !claim.claimed) return { id: claim.id, created: false, sameRequest: claim.sameRequest };
      this.addRecord(task, keys, args);
      return { id: task.id, created: true, sameRequest: true };
    });
    if (results.some((r) => r.created)) await CREATE.run(this.redis, keys, args);
    return results;
  }

  /** Appends one new task's keys and arguments for {@link CREATE}. */
  private addRecord(task: NewTask, keys: string[], args: (string | number)[]): void {
    const { id, request, createdAt, maxSteps, idempotencyHash, tenant, webhook } = task;
    const progress: TaskProgress = { step: 0, maxSteps, phase: 'queued' };
    const event: TaskEvent = { type: 'status', at: createdAt, status: 'queued' };
    // Input files go beside the record, not in it: every view reads the whole record.
    const { files, ...kept } = request;
    const pos = indexPosition(createdAt, id);
    const fields = [
      'id',
      id,
      'request',
      JSON.stringify(kept),
      'status',
      'queued',
      'createdAt',
      createdAt,
      'progress',
      JSON.stringify(progress),
      'pos',
      pos,
      'preview',
      promptPreview(request.prompt),
      ...(request.tags?.length ? ['tags', JSON.stringify(request.tags)] : []),
      ...(idempotencyHash === undefined ? [] : ['idem', idempotencyHash]),
      ...(tenant === undefined ? [] : ['tenant', tenant]),
      ...(webhook === undefined ? [] : ['webhook', JSON.stringify(webhook)]),
    ];
    const indexKeys = this.index.newKeys({
      ...(tenant === undefined ? {} : { tenant }),
      ...(request.tags ? { tags: request.tags } : {}),
    });
    keys.push(this.keys.record(id), this.keys.events(id), this.keys.inputs(id), ...indexKeys);
    args.push(
      indexKeys.length,
      pos,
      JSON.stringify(event),
      files && files.length > 0 ? JSON.stringify(files) : '',
      `${tenant ?? DEFAULT_TENANT}|submitted`,
      fields.length / 2,
      ...fields,
    );
  }

  async status(id: string): Promise<TaskStatus | undefined> {
    return ((await this.redis.hget(this.keys.record(id), 'status')) as TaskStatus | null) ?? undefined;
  }

  /**
   * Starts a run of the task on `workerId` (`queued → running`, or `running → running` for a
   * resume on another worker). The first start keeps its time, which the task's deadline counts
   * from; a resume only changes the worker. Refused when the task is over (cancelled meanwhile,
   * say): the result holds the status it has.
   */
  start(
    id: string,
    { workerId, at = new Date().toISOString() }: { workerId: string; at?: string },
  ): Promise<Transition> {
    return this.transition(id, 'running', { workerId }, at);
  }

  /**
   * Moves the task to status `to` if `TRANSITIONS` allows it from the status it has, atomically:
   * the check, the record's fields and the `status` event are one script, so two writers racing
   * (a cancel and a completion, say) end with exactly one final status, and the stream's last
   * `status` event is that status. A final status sets the retention of everything the task keeps.
   * A refused change writes nothing and says which status the task has (undefined: no record).
   * An applied final status queues its webhook delivery, whoever set it (the worker, a cancel at
   * the API): the one place every final status goes through.
   */
  async transition(
    id: string,
    to: TaskStatus,
    details: StatusDetails = {},
    at = new Date().toISOString(),
  ): Promise<Transition> {
    return this.apply(id, to, details, at, allowedFrom(to));
  }

  /**
   * Fails a task that is still `queued` with error code `expired` (its `ttlSeconds` is over). A
   * task that started or ended meanwhile is left as it is: the result says its status.
   */
  expire(id: string, message: string, at = new Date().toISOString()): Promise<Transition> {
    return this.apply(id, 'failed', { error: { code: 'expired', message } }, at, ['queued']);
  }

  private async apply(
    id: string,
    to: TaskStatus,
    details: StatusDetails,
    at: string,
    from: readonly TaskStatus[],
  ): Promise<Transition> {
    const final = FINAL_STATUSES.includes(to);
    const fields: string[] = [];
    if (details.workerId) fields.push('workerId', details.workerId);
    if (details.result) fields.push('result', JSON.stringify(details.result));
    if (details.error) fields.push('error', JSON.stringify(details.error));
    if (final) fields.push('finishedAt', at);
    const event: TaskEvent = { type: 'status', at, status: to, ...details };
    const [record, ...kept] = this.keys.all(id);
    const keys = [
      record!,
      this.keys.events(id),
      statsKey(this.keys.prefix),
      tenantStatsKey(this.keys.prefix),
      this.keys.webhookOutbox(),
    ];
    for (const key of kept) if (!keys.includes(key)) keys.push(key);
    const [done, status, startedAt, webhook] = await TRANSITION.run(this.redis, keys, [
      to,
      at,
      JSON.stringify(event),
      EVENTS_MAX_LEN,
      this.retentionSeconds,
      from.join(' '),
      final ? '1' : '0',
      this.index.base,
      this.index.ttlSeconds,
      DEFAULT_TENANT,
      id,
      ...fields,
    ]);
    if (done !== 1) return { ok: false, status: status === '' ? undefined : (status as TaskStatus) };
    // After the status is set; the script put the task in the webhook outbox, so a process killed
    // before this leaves it there for TaskWebhooks.recover.
    if (final && webhook) {
      await this.webhooks.final(id, to, at, webhook);
      await this.webhooks.settled(id);
    }
    return startedAt ? { ok: true, status: to, startedAt } : { ok: true, status: to };
  }
}

/** Which status may follow which; a final status has no successor. */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  queued: ['running', 'failed', 'cancelled'],
  // running → running: a resume on another worker (the task's lock expired, or a retry).
  running: ['running', 'completed', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
};

function allowedFrom(to: TaskStatus): TaskStatus[] {
  return (Object.keys(TRANSITIONS) as TaskStatus[]).filter((from) => TRANSITIONS[from].includes(to));
}

/** The outcome of `transition`: applied, or refused with the status the task has. */
export type Transition =
  | { ok: true; status: TaskStatus /** For a start: when the task first started. */; startedAt?: string }
  | { ok: false; status: TaskStatus | undefined };

/**
 * KEYS: record, events, stats, tenant stats, the webhook outbox, then the other keys a finished
 * task keeps (steps, outcomes, files, counted steps, web budget, input files). ARGV: to, at, event
 * JSON, events max length, retention s, statuses the task may be in (space separated), final
 * ('1'/'0'), index base, index TTL s, the default tenant, the task id, then field/value pairs for
 * the record. The index moves in the same script, so a list never shows a status the record does
 * not have; a final status of a task with a webhook enters the outbox in it too.
 */
const TRANSITION = new LuaScript<[number, string, string?, string?]>(
  'researchTransition',
  `${INDEX_LUA}${WORDS_LUA}
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {0, ''} end
if not has_word(ARGV[6], current) then return {0, current} end
local to = ARGV[1]
if #ARGV > 11 then redis.call('HSET', KEYS[1], 'status', to, unpack(ARGV, 12)) else redis.call('HSET', KEYS[1], 'status', to) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
local startedAt = ''
if to == 'running' then
  redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[2])
  startedAt = redis.call('HGET', KEYS[1], 'startedAt')
end
local meta = redis.call('HMGET', KEYS[1], 'pos', 'tenant')
local tenant = meta[2] or ARGV[10]
if meta[1] then index_move(ARGV[8], tonumber(ARGV[9]), tenant, meta[1], current, to) end
if ARGV[7] == '1' then
  redis.call('HINCRBY', KEYS[3], to, 1)
  redis.call('HINCRBY', KEYS[4], tenant .. '|' .. to, 1)
  for i = 1, #KEYS do
    if i > 5 or i < 3 then redis.call('EXPIRE', KEYS[i], ARGV[5]) end
  end
  local webhook = redis.call('HGET', KEYS[1], 'webhook') or ''
  if webhook ~= '' then
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[5], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[11])
  end
  return {1, to, startedAt, webhook}
end
return {1, to, startedAt}`,
);

/**
 * KEYS: stats, tenant stats, then per task: its record, events and input files, then the index
 * sets it enters. ARGV: the unfinished TTL s, the events' max length, the index TTL s, then per
 * task: how many index sets, its index position, its first event JSON, its input files JSON (''
 * none), its tenant's `submitted` stats field, how many record fields, the field/value pairs.
 * Each index set gets its TTL once, after every task is in.
 */
const CREATE = new LuaScript<null>(
  'researchCreateTasks',
  `local ttl, maxlen = ARGV[1], ARGV[2]
local k, a, touched = 3, 4, {}
while a <= #ARGV do
  local nidx, pos, inputs, npairs = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 3], tonumber(ARGV[a + 5])
  redis.call('HSET', KEYS[k], unpack(ARGV, a + 6, a + 5 + npairs * 2))
  redis.call('EXPIRE', KEYS[k], ttl)
  redis.call('XADD', KEYS[k + 1], 'MAXLEN', '~', maxlen, '*', 'e', ARGV[a + 2])
  redis.call('EXPIRE', KEYS[k + 1], ttl)
  if inputs ~= '' then redis.call('SET', KEYS[k + 2], inputs, 'EX', ttl) end
  redis.call('HINCRBY', KEYS[1], 'submitted', 1)
  redis.call('HINCRBY', KEYS[2], ARGV[a + 4], 1)
  for i = k + 3, k + 2 + nidx do
    redis.call('ZADD', KEYS[i], 0, pos)
    touched[KEYS[i]] = true
  end
  k = k + 3 + nidx
  a = a + 6 + npairs * 2
end
for key in pairs(touched) do redis.call('EXPIRE', key, ARGV[3]) end
return nil`,
);
