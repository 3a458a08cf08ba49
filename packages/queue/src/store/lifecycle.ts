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
import type { Redis } from '../connection.js';
import type { Idempotency } from './idempotency.js';
import type { TaskWebhooks } from './webhooks.js';
import { statsKey } from './stats.js';
import { EVENTS_MAX_LEN, type TaskKeys, UNFINISHED_TTL_S } from './task-keys.js';

/** What a new task's record starts with. One object, so a field can be added without touching callers. */
export interface NewTask {
  id: string;
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
    private readonly retentionSeconds: number,
    private readonly webhooks: TaskWebhooks,
  ) {}

  /**
   * Creates the record unless the idempotency key already names a task; returns the task's id
   * and whether it is new.
   */
  async create({ id, request, createdAt, maxSteps, idempotencyHash, tenant, webhook }: NewTask): Promise<CreatedTask> {
    if (idempotencyHash) {
      const claim = await this.idempotency.claim(idempotencyHash, id, request);
      if (!claim.claimed) return { id: claim.id, created: false, sameRequest: claim.sameRequest };
    }
    const progress: TaskProgress = { step: 0, maxSteps, phase: 'queued' };
    const event: TaskEvent = { type: 'status', at: createdAt, status: 'queued' };
    await this.redis
      .multi()
      .hset(this.keys.record(id), {
        id,
        request: JSON.stringify(request),
        status: 'queued',
        createdAt,
        progress: JSON.stringify(progress),
        ...(tenant === undefined ? {} : { tenant }),
        ...(webhook === undefined ? {} : { webhook: JSON.stringify(webhook) }),
      })
      .expire(this.keys.record(id), UNFINISHED_TTL_S)
      .xadd(this.keys.events(id), 'MAXLEN', '~', EVENTS_MAX_LEN, '*', 'e', JSON.stringify(event))
      .expire(this.keys.events(id), UNFINISHED_TTL_S)
      .hincrby(statsKey(this.keys.prefix), 'submitted', 1)
      .exec();
    return { id, created: true, sameRequest: true };
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
    const final = FINAL_STATUSES.includes(to);
    const fields: string[] = [];
    if (details.workerId) fields.push('workerId', details.workerId);
    if (details.result) fields.push('result', JSON.stringify(details.result));
    if (details.error) fields.push('error', JSON.stringify(details.error));
    if (final) fields.push('finishedAt', at);
    const event: TaskEvent = { type: 'status', at, status: to, ...details };
    const reply = (await this.redis.eval(
      TRANSITION,
      6,
      this.keys.record(id),
      this.keys.events(id),
      statsKey(this.keys.prefix),
      this.keys.steps(id),
      this.keys.outcomes(id),
      this.keys.files(id),
      to,
      at,
      JSON.stringify(event),
      EVENTS_MAX_LEN,
      this.retentionSeconds,
      allowedFrom(to).join(' '),
      final ? '1' : '0',
      ...fields,
    )) as [number, string, string?, string?];
    const [done, status, startedAt, webhook] = reply;
    if (done !== 1) return { ok: false, status: status === '' ? undefined : (status as TaskStatus) };
    // After the status is set: a crash between the two loses the delivery (see README, Webhooks).
    if (final && webhook) await this.webhooks.final(id, to, at, webhook);
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
 * KEYS: record, events, stats, then the other keys a finished task keeps (steps, outcomes, files).
 * ARGV: to, at, event JSON, events max length, retention s, statuses `to` may follow (space
 * separated), final ('1'/'0'), then field/value pairs for the record.
 */
const TRANSITION = `local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {0, ''} end
local allowed = false
for from in string.gmatch(ARGV[6], '%S+') do
  if from == current then allowed = true end
end
if not allowed then return {0, current} end
local to = ARGV[1]
if #ARGV > 7 then redis.call('HSET', KEYS[1], 'status', to, unpack(ARGV, 8)) else redis.call('HSET', KEYS[1], 'status', to) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[3])
local startedAt = ''
if to == 'running' then
  redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[2])
  startedAt = redis.call('HGET', KEYS[1], 'startedAt')
end
if ARGV[7] == '1' then
  redis.call('HINCRBY', KEYS[3], to, 1)
  for i = 1, #KEYS do
    if i ~= 3 then redis.call('EXPIRE', KEYS[i], ARGV[5]) end
  end
  return {1, to, startedAt, redis.call('HGET', KEYS[1], 'webhook') or ''}
end
return {1, to, startedAt}`;
