import {
  FINAL_STATUSES,
  type TaskError,
  type TaskEvent,
  type TaskProgress,
  type TaskRequest,
  type TaskResult,
  type TaskStatus,
} from '@research/contracts';
import type { Redis } from '../connection.js';
import type { Idempotency } from './idempotency.js';
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
  ) {}

  /**
   * Creates the record unless the idempotency key already names a task; returns the task's id
   * and whether it is new.
   */
  async create({ id, request, createdAt, maxSteps, idempotencyHash }: NewTask): Promise<CreatedTask> {
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

  /** First start keeps its time (the task's deadline counts from it); a resume only changes the worker. */
  async markRunning(id: string, workerId: string, at: string): Promise<{ startedAt: string }> {
    const key = this.keys.record(id);
    // Sent back to back on one connection: the read sees the write.
    const [, stored] = await Promise.all([this.redis.hsetnx(key, 'startedAt', at), this.redis.hget(key, 'startedAt')]);
    const startedAt = stored ?? at;
    await this.setStatus(id, 'running', { workerId });
    return { startedAt };
  }

  /** Sets the status and appends the matching `status` event in one transaction. */
  async setStatus(id: string, status: TaskStatus, extra: StatusDetails = {}): Promise<void> {
    const at = new Date().toISOString();
    const fields: Record<string, string> = { status };
    if (extra.workerId) fields.workerId = extra.workerId;
    if (extra.result) fields.result = JSON.stringify(extra.result);
    if (extra.error) fields.error = JSON.stringify(extra.error);
    const final = FINAL_STATUSES.includes(status);
    if (final) fields.finishedAt = at;
    const event: TaskEvent = { type: 'status', at, status, ...extra };
    const m = this.redis
      .multi()
      .hset(this.keys.record(id), fields)
      .xadd(this.keys.events(id), 'MAXLEN', '~', EVENTS_MAX_LEN, '*', 'e', JSON.stringify(event));
    if (final) {
      m.hincrby(statsKey(this.keys.prefix), status, 1);
      for (const key of this.keys.all(id)) m.expire(key, this.retentionSeconds);
    }
    await m.exec();
  }
}
