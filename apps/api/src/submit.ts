import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Logger } from '@research/config';
import type { TaskRequest } from '@research/contracts';
import {
  type ExpiryJobData,
  JOBS,
  type NewTask,
  type QueuedQuota,
  type Redis,
  type TaskJobData,
  type TaskStore,
  taskJobOptions,
} from '@research/queue';
import { type ApiError, ConflictError, TooManyRequestsError } from './errors.js';
import { expiryJob } from './expiry.js';
import { guard } from './redis-guard.js';

/** How soon a tenant at its queued limit is told to try again (tasks start within seconds). */
const QUOTA_RETRY_AFTER_S = 5;

/** One task to submit: its request and its hashed idempotency key, if it has one. */
export interface Submission {
  request: TaskRequest;
  idempotencyHash?: string;
}

/** What became of one submission: a task (new, or the one its idempotency key named), or a refusal. */
export type SubmitOutcome =
  | { ok: true; id: string; created: boolean; createdAt: string }
  | { ok: false; error: ApiError };

export interface SubmitterDeps {
  redis: Redis;
  store: TaskStore;
  queue: Queue<TaskJobData>;
  expiry: Queue<ExpiryJobData>;
  quota: QueuedQuota;
  logger: Logger;
  /** A task's step budget when its request names none. */
  defaultMaxSteps: number;
}

/**
 * Submitting tasks, one or a batch the same way: each is admitted against its tenant's queued
 * quota, the new records are written in one MULTI, the jobs are added in one `addBulk` (one round
 * trip to Redis), and the expiry checks of the tasks with a `ttlSeconds` in another. A refusal
 * (quota, an idempotency key reused for another request) is that submission's outcome; an
 * infrastructure failure (Redis away) fails them all and leaves nothing half-made behind.
 */
export class Submitter {
  constructor(private readonly d: SubmitterDeps) {}

  async submit(tenant: string, submissions: readonly Submission[]): Promise<SubmitOutcome[]> {
    const { redis, store, queue, quota, logger } = this.d;
    const createdAt = new Date().toISOString();
    const tasks: NewTask[] = submissions.map(({ request, idempotencyHash }) => ({
      id: randomUUID(),
      request,
      createdAt,
      maxSteps: request.maxSteps ?? this.d.defaultMaxSteps,
      tenant,
      ...(idempotencyHash === undefined ? {} : { idempotencyHash }),
    }));
    const outcomes: (SubmitOutcome | undefined)[] = new Array(tasks.length);

    const admissions = await guard(redis, () =>
      Promise.all(tasks.map((t) => quota.admit(tenant, t.id, t.idempotencyHash))),
    );
    const admittedIdx: number[] = [];
    admissions.forEach((admission, i) => {
      if (admission === 'full') outcomes[i] = { ok: false, error: this.quotaError(tenant) };
      else admittedIdx.push(i);
    });
    const admitted = admittedIdx.map((i) => tasks[i]!);
    const releaseAdmitted = (which: number[]) =>
      Promise.allSettled(
        which.filter((i) => admissions[i] === 'admitted').map((i) => quota.release(tenant, tasks[i]!.id)),
      );

    const created = await guard(redis, () => store.lifecycle.createMany(admitted)).catch(async (err: unknown) => {
      await releaseAdmitted(admittedIdx);
      throw err;
    });
    const fresh: number[] = [];
    const repeats: number[] = [];
    created.forEach((c, k) => {
      const i = admittedIdx[k]!;
      if (c.created) {
        fresh.push(i);
        return;
      }
      // A repeat that raced its first submit past the admission check: it was counted for nothing.
      repeats.push(i);
      outcomes[i] = c.sameRequest
        ? { ok: true, id: c.id, created: false, createdAt }
        : {
            ok: false,
            error: new ConflictError(
              'idempotency_key_reused',
              'this Idempotency-Key was already used for a different request in the last 24 hours; use a new key',
              { id: c.id },
            ),
          };
    });
    await guard(redis, async () => {
      await releaseAdmitted(repeats);
      // Created though its key was taken at admission (the key expired meanwhile): count it now.
      await Promise.all(fresh.filter((i) => admissions[i] === 'repeat').map((i) => quota.add(tenant, tasks[i]!.id)));
    });

    const jobs = fresh.map((i) => {
      const t = tasks[i]!;
      const data: TaskJobData = { taskId: t.id, request: t.request, createdAt };
      return { name: JOBS.task.name(data), data, opts: taskJobOptions(t.id, t.request) };
    });
    if (jobs.length > 0) {
      try {
        await guard(redis, () => queue.addBulk(jobs));
      } catch (err) {
        await this.abandon(
          tenant,
          fresh.map((i) => tasks[i]!),
        );
        throw err;
      }
    }
    for (const i of fresh) outcomes[i] = { ok: true, id: tasks[i]!.id, created: true, createdAt };

    const expiring = fresh.map((i) => tasks[i]!).filter((t) => t.request.ttlSeconds !== undefined);
    if (expiring.length > 0) {
      // Without its check a task still expires, when a worker picks it up; only a backlog waits longer.
      await guard(redis, () =>
        this.d.expiry.addBulk(expiring.map((t) => expiryJob(t.id, t.request.ttlSeconds!, createdAt))),
      ).catch((err: unknown) =>
        logger.warn({ err, tasks: expiring.length }, 'could not schedule expiry checks; workers check at start'),
      );
    }
    logger.debug({ tenant, submitted: submissions.length, created: fresh.length }, 'tasks queued');
    return outcomes.map((o) => o!);
  }

  /**
   * The records exist but no worker will ever see them: say so in each record, and free the
   * idempotency keys so the client's retry creates tasks that run.
   */
  private async abandon(tenant: string, tasks: NewTask[]): Promise<void> {
    const { redis, store, quota } = this.d;
    await Promise.allSettled(
      tasks.flatMap((t) => [
        guard(redis, () =>
          store.lifecycle.transition(t.id, 'failed', {
            error: { code: 'internal', message: 'the task could not be queued' },
          }),
        ),
        t.idempotencyHash ? guard(redis, () => store.idempotency.drop(t.idempotencyHash!)) : Promise.resolve(),
        guard(redis, () => quota.release(tenant, t.id)),
      ]),
    );
  }

  private quotaError(tenant: string): ApiError {
    const { limit } = this.d.quota;
    return new TooManyRequestsError(
      'quota_exceeded',
      `tenant ${tenant} already has ${limit} tasks queued and not yet started (TENANT_MAX_QUEUED=${limit}); submit again once some have started`,
      QUOTA_RETRY_AFTER_S,
      { limit, tenant },
    );
  }
}
