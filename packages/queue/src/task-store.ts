import {
  FINAL_STATUSES,
  type TaskEvent,
  type TaskProgress,
  TaskRequest,
  TaskResult,
  TaskView,
  StepView,
  type TaskError,
  type TaskStatus,
} from '@research/contracts';
import { createHash } from 'node:crypto';
import type { Redis } from './connection.js';
import { Keys } from './names.js';

/** Events kept per task; older ones are trimmed (approximately) so Redis stays bounded. */
const EVENTS_MAX_LEN = 5_000;
/** Records of unfinished tasks expire too, in case a task is lost beyond recovery. */
const UNFINISHED_TTL_S = 30 * 86_400;

/** Upper bounds (seconds) of the step duration histogram. */
export const STEP_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface TaskStoreOptions {
  /** How long a finished task's record, events and files are kept. Default: 7 days. */
  retentionSeconds?: number;
}

export interface StoredStep extends StepView {
  /** Step queue the step job was added to (the worker that owned the task then). */
  queue?: string;
}

/**
 * Who may write a task's checkpoint and dispatch its steps: the holder of the task job's lock.
 * A run that lost the lock (its worker stalled, or Redis was away longer than the lock) may not
 * have noticed yet; its writes are refused, so it cannot overwrite the checkpoint of the task's
 * next owner or dispatch a step beside it.
 */
export interface TaskFence {
  /** The task job's lock key (`<prefix>:agent:<taskId>:lock`). */
  lockKey: string;
  /** The lock token of the run that writes. */
  token: string;
}

/** KEYS: the lock, the hash. ARGV: token, field, value, ttl in seconds ('' for none). */
const FENCED_HSET = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return 1`;

export interface StoredFile {
  path: string;
  size: number;
  content?: Buffer;
}

/** A task's record in Redis: what the API shows and what a resuming worker needs. */
export class TaskStore {
  readonly keys: Keys;
  private readonly retentionSeconds: number;

  constructor(
    readonly redis: Redis,
    prefix: string,
    options: TaskStoreOptions = {},
  ) {
    this.keys = new Keys(prefix);
    this.retentionSeconds = options.retentionSeconds ?? 7 * 86_400;
  }

  /**
   * Creates the record unless the idempotency key already names a task; returns the task's id
   * and whether it is new.
   */
  async create(
    id: string,
    request: TaskRequest,
    createdAt: string,
    maxSteps: number,
    idempotencyHash?: string,
    /** The tenant of the API key that submitted it (`tenant(id)` reads it back). */
    tenant?: string,
  ): Promise<{ id: string; created: boolean; sameRequest: boolean }> {
    if (idempotencyHash) {
      // The key remembers the request it was first used with, so a reuse for another request is told apart.
      const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('hex').slice(0, 32);
      const key = this.keys.idempotency(idempotencyHash);
      const ok = await this.redis.set(key, `${id}|${fingerprint}`, 'EX', 86_400, 'NX');
      if (ok === null) {
        const existing = await this.redis.get(key);
        if (existing) {
          const [existingId = existing, existingFingerprint] = existing.split('|');
          return {
            id: existingId,
            created: false,
            sameRequest: existingFingerprint === undefined || existingFingerprint === fingerprint,
          };
        }
      }
    }
    const progress: TaskProgress = { step: 0, maxSteps, phase: 'queued' };
    const event: TaskEvent = { type: 'status', at: createdAt, status: 'queued' };
    await this.redis
      .multi()
      .hset(this.keys.task(id), {
        id,
        request: JSON.stringify(request),
        status: 'queued',
        createdAt,
        progress: JSON.stringify(progress),
        ...(tenant === undefined ? {} : { tenant }),
      })
      .expire(this.keys.task(id), UNFINISHED_TTL_S)
      .xadd(this.keys.taskEvents(id), 'MAXLEN', '~', EVENTS_MAX_LEN, '*', 'e', JSON.stringify(event))
      .expire(this.keys.taskEvents(id), UNFINISHED_TTL_S)
      .hincrby(this.keys.stats(), 'submitted', 1)
      .exec();
    return { id, created: true, sameRequest: true };
  }

  /** Forgets an idempotency key (used when enqueueing failed after the record was made). */
  async dropIdempotency(idempotencyHash: string): Promise<void> {
    await this.redis.del(this.keys.idempotency(idempotencyHash));
  }

  async exists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.task(id))) === 1;
  }

  async status(id: string): Promise<TaskStatus | undefined> {
    return ((await this.redis.hget(this.keys.task(id), 'status')) as TaskStatus | null) ?? undefined;
  }

  /** The tenant recorded by `create`; undefined for no task and for a record made without one. */
  async tenant(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.task(id), 'tenant')) ?? undefined;
  }

  async request(id: string): Promise<TaskRequest | undefined> {
    const raw = await this.redis.hget(this.keys.task(id), 'request');
    return raw ? TaskRequest.parse(JSON.parse(raw)) : undefined;
  }

  async view(id: string): Promise<TaskView | undefined> {
    const [h, steps] = await Promise.all([
      this.redis.hgetall(this.keys.task(id)),
      this.redis.hgetall(this.keys.taskSteps(id)),
    ]);
    if (!h.id || !h.request || !h.status || !h.createdAt) return undefined;
    const request = JSON.parse(h.request) as TaskRequest;
    const stepViews = Object.values(steps)
      .map((raw) => JSON.parse(raw) as StoredStep)
      .sort((a, b) => a.index - b.index)
      .map(({ queue: _queue, ...v }) => StepView.parse(v));
    const view: TaskView = {
      id: h.id,
      status: h.status as TaskStatus,
      prompt: request.prompt,
      createdAt: h.createdAt,
      progress: h.progress ? (JSON.parse(h.progress) as TaskProgress) : { step: 0, maxSteps: 1, phase: 'queued' },
      steps: stepViews,
    };
    if (h.startedAt) view.startedAt = h.startedAt;
    if (h.finishedAt) view.finishedAt = h.finishedAt;
    if (h.workerId) view.workerId = h.workerId;
    if (h.result) view.result = TaskResult.parse(JSON.parse(h.result));
    if (h.error) view.error = JSON.parse(h.error) as TaskError;
    if (request.metadata) view.metadata = request.metadata;
    return TaskView.parse(view);
  }

  /** First start keeps its time (the task's deadline counts from it); a resume only changes the worker. */
  async markRunning(id: string, workerId: string, at: string): Promise<{ startedAt: string }> {
    const key = this.keys.task(id);
    // Sent back to back on one connection: the read sees the write.
    const [, stored] = await Promise.all([this.redis.hsetnx(key, 'startedAt', at), this.redis.hget(key, 'startedAt')]);
    const startedAt = stored ?? at;
    await this.setStatus(id, 'running', { workerId });
    return { startedAt };
  }

  async setProgress(id: string, progress: TaskProgress): Promise<void> {
    await this.redis.hset(this.keys.task(id), 'progress', JSON.stringify(progress));
  }

  /**
   * Plain commands, not a MULTI: they go out at once, in order, ahead of anything sent after them
   * on this connection (the dispatcher relies on that to record a step before adding its job).
   */
  async setStep(id: string, step: StoredStep): Promise<void> {
    await Promise.all([
      this.redis.hset(this.keys.taskSteps(id), String(step.index), JSON.stringify(step)),
      this.redis.expire(this.keys.taskSteps(id), UNFINISHED_TTL_S),
    ]);
  }

  /**
   * Records a step about to be dispatched, only while `fence` holds the task's lock. Returns
   * false (and writes nothing) when it does not: the step must not be dispatched.
   */
  async setStepFenced(id: string, step: StoredStep, fence: TaskFence): Promise<boolean> {
    return this.fencedHset(fence, this.keys.taskSteps(id), String(step.index), JSON.stringify(step), UNFINISHED_TTL_S);
  }

  private async fencedHset(
    fence: TaskFence,
    key: string,
    field: string,
    value: string,
    ttlSeconds?: number,
  ): Promise<boolean> {
    const done = await this.redis.eval(
      FENCED_HSET,
      2,
      fence.lockKey,
      key,
      fence.token,
      field,
      value,
      ttlSeconds === undefined ? '' : String(ttlSeconds),
    );
    return done === 1;
  }

  /**
   * Records a finished step together with its outcome, in one transaction. Whatever delivers the
   * step again later — a step job re-queued after its lock expired (Redis was away), a task
   * resumed on another worker — is answered from this record instead of running it twice.
   */
  async completeStep(id: string, step: StoredStep, outcome: unknown): Promise<void> {
    const m = this.redis
      .multi()
      .hset(this.keys.taskSteps(id), String(step.index), JSON.stringify(step))
      .hset(this.keys.taskOutcomes(id), String(step.index), JSON.stringify(outcome))
      .expire(this.keys.taskSteps(id), UNFINISHED_TTL_S)
      .expire(this.keys.taskOutcomes(id), UNFINISHED_TTL_S);
    // The duration goes into the histogram in the same round trip.
    if (step.durationMs !== undefined) this.addStepDuration(m, step.durationMs);
    await m.exec();
  }

  /**
   * Drops a step's recorded outcome once its job completed (the job's return value holds it from
   * then on): outcomes can be large (a read-file up to 1 MiB), so they are not kept twice.
   */
  async forgetStepOutcome(id: string, index: number): Promise<void> {
    await this.redis.hdel(this.keys.taskOutcomes(id), String(index));
  }

  /** The recorded outcome of a finished step (see `completeStep`), unparsed. */
  async stepOutcome(id: string, index: number): Promise<unknown> {
    const raw = await this.redis.hget(this.keys.taskOutcomes(id), String(index));
    return raw === null ? undefined : (JSON.parse(raw) as unknown);
  }

  async getStep(id: string, index: number): Promise<StoredStep | undefined> {
    const raw = await this.redis.hget(this.keys.taskSteps(id), String(index));
    return raw ? (JSON.parse(raw) as StoredStep) : undefined;
  }

  /** Sets the status and appends the matching `status` event in one transaction. */
  async setStatus(
    id: string,
    status: TaskStatus,
    extra: { workerId?: string; result?: TaskResult; error?: TaskError } = {},
  ): Promise<void> {
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
      .hset(this.keys.task(id), fields)
      .xadd(this.keys.taskEvents(id), 'MAXLEN', '~', EVENTS_MAX_LEN, '*', 'e', JSON.stringify(event));
    if (final) {
      m.hincrby(this.keys.stats(), status, 1);
      for (const key of [
        this.keys.task(id),
        this.keys.taskSteps(id),
        this.keys.taskOutcomes(id),
        this.keys.taskEvents(id),
        this.keys.taskFiles(id),
      ]) {
        m.expire(key, this.retentionSeconds);
      }
    }
    await m.exec();
  }

  async appendEvent(id: string, event: TaskEvent): Promise<string> {
    const streamId = await this.redis.xadd(
      this.keys.taskEvents(id),
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
  async readEvents(id: string, afterId = '-', count = 500): Promise<{ id: string; event: TaskEvent }[]> {
    const start = afterId === '-' ? '-' : `(${afterId}`;
    const rows = await this.redis.xrange(this.keys.taskEvents(id), start, '+', 'COUNT', count);
    return rows.map(([streamId, fields]) => ({ id: streamId, event: JSON.parse(fields[1] ?? '{}') as TaskEvent }));
  }

  /**
   * Waits up to `blockMs` for events after `afterId` on a connection of its own (XREAD BLOCK
   * holds the connection).
   */
  async waitEvents(
    blocking: Redis,
    id: string,
    afterId: string,
    blockMs: number,
  ): Promise<{ id: string; event: TaskEvent }[]> {
    const res = (await blocking.xread(
      'COUNT',
      500,
      'BLOCK',
      blockMs,
      'STREAMS',
      this.keys.taskEvents(id),
      afterId === '-' ? '0' : afterId,
    )) as [string, [string, string[]][]][] | null;
    const rows = res?.[0]?.[1] ?? [];
    return rows.map(([streamId, fields]) => ({ id: streamId, event: JSON.parse(fields[1] ?? '{}') as TaskEvent }));
  }

  /** Saves the checkpoint only while `fence` holds the task's lock; false when it does not. */
  async saveCheckpointFenced(id: string, state: unknown, fence: TaskFence): Promise<boolean> {
    return this.fencedHset(fence, this.keys.task(id), 'checkpoint', JSON.stringify(state));
  }

  async loadCheckpoint<T>(id: string): Promise<T | undefined> {
    const raw = await this.redis.hget(this.keys.task(id), 'checkpoint');
    return raw ? (JSON.parse(raw) as T) : undefined;
  }

  /** Keeps the task's files so the API serves them after the worker or its container is gone. */
  async saveFiles(id: string, files: StoredFile[]): Promise<void> {
    const key = this.keys.taskFiles(id);
    const list = files.map((f) => ({ path: f.path, size: f.size, stored: f.content !== undefined }));
    const m = this.redis.multi().del(key).hset(this.keys.task(id), 'files', JSON.stringify(list));
    for (const f of files) if (f.content !== undefined) m.hset(key, `f:${f.path}`, f.content);
    m.expire(key, UNFINISHED_TTL_S);
    await m.exec();
  }

  async listFiles(id: string): Promise<{ path: string; size: number; stored: boolean }[] | undefined> {
    const raw = await this.redis.hget(this.keys.task(id), 'files');
    return raw ? (JSON.parse(raw) as { path: string; size: number; stored: boolean }[]) : undefined;
  }

  /** A stored file's bytes; lookup is by exact key, never through a filesystem. */
  async readFile(id: string, path: string): Promise<Buffer | undefined> {
    return (await this.redis.hgetBuffer(this.keys.taskFiles(id), `f:${path}`)) ?? undefined;
  }

  /** With per-task sandboxes: the slot (container and volume) holding the task's workspace. */
  async sandboxSlot(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.task(id), 'sandboxSlot')) ?? undefined;
  }

  async setSandboxSlot(id: string, slot: string): Promise<void> {
    await this.redis.hset(this.keys.task(id), 'sandboxSlot', slot);
  }

  /** Flags the task and tells every worker; the worker running it aborts it. */
  async requestCancel(id: string): Promise<void> {
    await this.redis.hset(this.keys.task(id), 'cancelRequested', '1');
    await this.redis.publish(this.keys.cancelChannel(), id);
  }

  async isCancelRequested(id: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.task(id), 'cancelRequested')) === '1';
  }

  /** Step durations as histogram buckets in Redis, so the API's /metrics covers every worker. */
  async recordStepDuration(durationMs: number): Promise<void> {
    const m = this.redis.multi();
    this.addStepDuration(m, durationMs);
    await m.exec();
  }

  /** One bucket per observation (made cumulative when read), plus count and sum. */
  private addStepDuration(m: ReturnType<Redis['multi']>, durationMs: number): void {
    const seconds = durationMs / 1000;
    const le = STEP_BUCKETS_S.find((b) => seconds <= b);
    m.hincrby(this.keys.stats(), le === undefined ? 'step_b_inf' : `step_b_${le}`, 1)
      .hincrby(this.keys.stats(), 'step_count', 1)
      .hincrbyfloat(this.keys.stats(), 'step_sum_s', seconds);
  }

  async incrementCounter(name: string, by = 1): Promise<void> {
    await this.redis.hincrby(this.keys.stats(), name, by);
  }

  async stepHistogram(): Promise<{ buckets: { le: number; count: number }[]; count: number; sumSeconds: number }> {
    const h = await this.redis.hgetall(this.keys.stats());
    let cumulative = 0;
    return {
      buckets: STEP_BUCKETS_S.map((le) => {
        cumulative += Number(h[`step_b_${le}`] ?? 0);
        return { le, count: cumulative };
      }),
      count: Number(h.step_count ?? 0),
      sumSeconds: Number(h.step_sum_s ?? 0),
    };
  }

  /** Totals since the store began: submitted, completed, failed, cancelled, containerRestarts, …. */
  async counters(): Promise<Record<string, number>> {
    const h = await this.redis.hgetall(this.keys.stats());
    return Object.fromEntries(
      Object.entries(h)
        .filter(([k]) => !k.startsWith('step_'))
        .map(([k, v]) => [k, Number(v)]),
    );
  }
}
