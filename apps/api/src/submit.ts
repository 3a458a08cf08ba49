import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Logger } from '@research/config';
import type { TaskRequest, TaskWebhook } from '@research/contracts';
import {
  type ExpiryJobData,
  type FairShare,
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
import { GroupCommit } from './group-commit.js';
import { guard } from './redis-guard.js';

/** How soon a tenant at its queued limit is told to try again (tasks start within seconds). */
const QUOTA_RETRY_AFTER_S = 5;

/** One task to submit: its request and its hashed idempotency key, if it has one. */
export interface Submission {
  request: TaskRequest;
  idempotencyHash?: string;
  /** Where its webhook deliveries go (see `Submitter.webhookOf`). */
  webhook?: TaskWebhook;
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
  /** Tags each task with its place among all tenants' (fair share). */
  fair: FairShare;
  logger: Logger;
  /** A task's step budget when its request names none. */
  defaultMaxSteps: number;
  /** The webhook of a task: its own, or its tenant's default; throws a 400 when webhooks are off. */
  webhookOf: (tenant: string, request: TaskRequest) => TaskWebhook | undefined;
  /** The most single submits of one tenant written together (see `Submitter.submitOne`). */
  maxGroup: number;
}

/**
 * Submitting tasks, one or a batch the same way: all are admitted against their tenant's queued
 * quota in one script call, the new records are written in another, the jobs are added in one
 * `addBulk` (one round trip to Redis; a lone job with `add`), and the expiry checks of the tasks
 * with a `ttlSeconds` in another. A refusal (quota, an idempotency key reused for another
 * request) is that submission's outcome; an infrastructure failure (Redis away) fails them all
 * and leaves nothing half-made behind.
 */
export class Submitter {
  /** Single submits, grouped per tenant (see `submitOne`). */
  private readonly singles: GroupCommit<Submission, SubmitOutcome>;

  constructor(private readonly d: SubmitterDeps) {
    this.singles = new GroupCommit((tenant, submissions) => this.submit(tenant, submissions), d.maxGroup);
  }

  /**
   * One task (`POST /v1/jobs`), written with the other single submits of its tenant that arrive
   * while one of the tenant's is being written (see GroupCommit): under load they share their
   * round trips to Redis as a batch's items do. Each answer is its own (a refusal is that
   * submit's); an infrastructure failure fails the whole group, each with the 503 it would have
   * had alone.
   */
  submitOne(tenant: string, submission: Submission): Promise<SubmitOutcome> {
    return this.singles.add(tenant, submission);
  }

  /** The webhook a submission of `tenant` gets; throws the 400 `webhooks_disabled` (an item's own refusal). */
  webhookOf(tenant: string, request: TaskRequest): TaskWebhook | undefined {
    return this.d.webhookOf(tenant, request);
  }

  async submit(tenant: string, submissions: readonly Submission[]): Promise<SubmitOutcome[]> {
    const { redis, store, queue, quota, logger } = this.d;
    const createdAt = new Date().toISOString();
    const tasks: NewTask[] = submissions.map(({ request, idempotencyHash, webhook }) => ({
      id: randomUUID(),
      request,
      createdAt,
      maxSteps: request.maxSteps ?? this.d.defaultMaxSteps,
      tenant,
      ...(idempotencyHash === undefined ? {} : { idempotencyHash }),
      ...(webhook === undefined ? {} : { webhook }),
    }));
    const outcomes: (SubmitOutcome | undefined)[] = new Array(tasks.length);

    const admissions = await guard(redis, () => quota.admit(tenant, tasks));
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

    // The tags of the tasks admitted as new go out beside their records: one round trip less per
    // submit. Consecutive, so a batch keeps its order within its tenant. One that turns out a
    // repeat after all (it raced its first submit past admission) leaves a gap in its tenant's
    // tags, which orders nothing.
    const tagged = admittedIdx.filter((i) => admissions[i] === 'admitted');
    const [created, firstTag] = await Promise.all([
      guard(redis, () => store.lifecycle.createMany(admitted)),
      tagged.length > 0 ? guard(redis, () => this.d.fair.tag(tenant, tagged.length)) : Promise.resolve(1),
    ]).catch(async (err: unknown) => {
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
    // Created though its key was taken at admission (the key expired meanwhile): counted, and
    // tagged, now (after the rest of its batch).
    const late = fresh.filter((i) => admissions[i] === 'repeat');
    const [lateTag] = await guard(redis, () =>
      Promise.all([
        late.length > 0 ? this.d.fair.tag(tenant, late.length) : Promise.resolve(1),
        releaseAdmitted(repeats),
        ...late.map((i) => quota.add(tenant, tasks[i]!.id)),
      ]),
    );
    const tagOf = new Map<number, number>([
      ...tagged.map((i, n) => [i, firstTag + n] as const),
      ...late.map((i, n) => [i, lateTag + n] as const),
    ]);
    const jobs = fresh.map((i) => {
      const t = tasks[i]!;
      // Input files wait with the task record (the lifecycle put them there), not in the job's data.
      const { files, ...queued } = t.request;
      const data: TaskJobData = {
        taskId: t.id,
        request: queued,
        createdAt,
        ...(files && files.length > 0 ? { inputFiles: files.length } : {}),
      };
      return { name: JOBS.task.name(data), data, opts: taskJobOptions(t.id, t.request, tagOf.get(i)) };
    });
    if (jobs.length > 0) {
      try {
        // One job alone skips the MULTI that `addBulk` wraps around its adds.
        const [only] = jobs;
        await guard(redis, async () => {
          if (jobs.length === 1) await queue.add(only!.name, only!.data, only!.opts);
          else await queue.addBulk(jobs);
        });
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
