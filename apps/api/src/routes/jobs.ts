import { createHash, randomUUID } from 'node:crypto';
import { Router } from 'express';
import { FINAL_STATUSES, TaskRequest, type TaskAccepted, type TaskView } from '@research/contracts';
import { JOBS, QueuedQuota, jobOptions, type TaskJobData } from '@research/queue';
import { callerOf } from '../auth.js';
import { jsonBody } from '../body.js';
import type { ApiDeps } from '../deps.js';
import { ConflictError, InvalidRequestError, NotFoundError, TooManyRequestsError } from '../errors.js';
import { guard } from '../redis-guard.js';
import { type OwnedTask, taskRoute } from '../task-routes.js';
import { methodNotAllowed } from './method.js';
import { taskWebhook } from './webhooks.js';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Keys `TaskMetadata`'s record would silently drop (a JSON `__proto__` key becomes a prototype assignment). */
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'];
/** How soon a tenant at its queued limit is told to try again (tasks start within seconds). */
const QUOTA_RETRY_AFTER_S = 5;

export function taskLinks(id: string): TaskAccepted['links'] {
  const self = `/v1/jobs/${id}`;
  return { self, events: `${self}/events`, files: `${self}/files`, cancel: `${self}/cancel` };
}

/** `POST /v1/jobs`, `GET /v1/jobs/:id`, `POST /v1/jobs/:id/cancel`. */
export function jobsRouter(deps: ApiDeps): Router {
  const { env, redis, store, queue, logger } = deps;
  const router = Router();
  const quota = new QueuedQuota(redis, env.QUEUE_PREFIX, env.TENANT_MAX_QUEUED);

  router
    .route('/jobs')
    .post(...jsonBody({ maxBodyBytes: env.MAX_BODY_BYTES, bodyTimeoutMs: env.BODY_TIMEOUT_MS }), async (req, res) => {
      const { tenant } = callerOf(res.locals);
      const idempotencyHash = idempotencyHashOf(req.get('idempotency-key'), tenant);
      const request = parseTaskRequest(req.body);
      const webhook = taskWebhook(env, tenant, request);
      const id = randomUUID();
      const createdAt = new Date().toISOString();
      const maxSteps = request.maxSteps ?? env.TASK_MAX_STEPS;

      const admission = await guard(redis, () => quota.admit(tenant, id, idempotencyHash));
      if (admission === 'full') {
        throw new TooManyRequestsError(
          'quota_exceeded',
          `tenant ${tenant} already has ${quota.limit} tasks queued and not yet started (TENANT_MAX_QUEUED=${quota.limit}); submit again once some have started`,
          QUOTA_RETRY_AFTER_S,
          { limit: quota.limit, tenant },
        );
      }
      const created = await guard(redis, () =>
        store.lifecycle.create({
          id,
          request,
          createdAt,
          maxSteps,
          idempotencyHash,
          tenant,
          ...(webhook ? { webhook } : {}),
        }),
      ).catch(async (err: unknown) => {
        if (admission === 'admitted') await quota.release(tenant, id).catch(() => undefined);
        throw err;
      });
      if (!created.created) {
        // A repeat that raced its first submit past the admission check: it was counted for nothing.
        if (admission === 'admitted') await guard(redis, () => quota.release(tenant, id));
        if (!created.sameRequest) {
          throw new ConflictError(
            'idempotency_key_reused',
            'this Idempotency-Key was already used for a different request in the last 24 hours; use a new key',
            { id: created.id },
          );
        }
        const existing = await guard(redis, () => store.records.view(created.id));
        res.status(202).json(accepted(created.id, existing?.status ?? 'queued', existing?.createdAt ?? createdAt));
        return;
      }
      if (admission === 'repeat') await guard(redis, () => quota.add(tenant, id));
      const data: TaskJobData = { taskId: id, request, createdAt };
      try {
        await guard(redis, () => queue.add(JOBS.task.name(data), data, jobOptions('task', { jobId: id })));
      } catch (err) {
        // The record exists but no worker will ever see it: say so in the record, and free the
        // idempotency key so the client's retry creates a task that runs.
        await Promise.allSettled([
          guard(redis, () =>
            store.lifecycle.transition(id, 'failed', {
              error: { code: 'internal', message: 'the task could not be queued' },
            }),
          ),
          idempotencyHash ? guard(redis, () => store.idempotency.drop(idempotencyHash)) : Promise.resolve(),
          guard(redis, () => quota.release(tenant, id)),
        ]);
        throw err;
      }
      logger.debug({ taskId: id, tenant, maxSteps }, 'task queued');
      res
        .status(202)
        .location(taskLinks(id).self)
        .json(accepted(id, 'queued', createdAt));
    })
    .all(methodNotAllowed(['POST']));

  taskRoute(router, deps, '/jobs/:id', {
    get: async (_req, res, task) => {
      const view = await guard(redis, () => store.records.view(task.id));
      if (!view) throw new NotFoundError(`no job ${task.id}`);
      res.json(withTenant(view, task));
    },
  });

  taskRoute(router, deps, '/jobs/:id/cancel', {
    post: async (_req, res, task) => {
      const { id, status } = task;
      if (FINAL_STATUSES.includes(status))
        throw new ConflictError('already_finished', `job ${id} already finished (${status})`, { status });

      const state = await guard(redis, () => queue.getJobState(id));
      let removed = false;
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'unknown') {
        // remove() answers 0 when a worker holds the job's lock: it just started, so cancel it as running.
        removed = state === 'unknown' || (await guard(redis, () => queue.remove(id))) === 1;
      }
      if (removed) {
        // No worker holds the job now, so the API ends the task itself. The transition is refused
        // when a worker finished it meanwhile: that status stands.
        const cancelled = await guard(redis, () =>
          store.lifecycle.transition(id, 'cancelled', {
            error: { code: 'cancelled', message: 'cancelled before it started' },
          }),
        );
        if (!cancelled.ok) {
          if (cancelled.status === undefined) throw new NotFoundError(`no job ${id}`);
          if (FINAL_STATUSES.includes(cancelled.status))
            throw new ConflictError('already_finished', `job ${id} already finished (${cancelled.status})`, {
              status: cancelled.status,
            });
        }
        await guard(redis, () => quota.release(task.tenant, id));
      } else {
        await guard(redis, () => store.cancels.request(id));
      }
      logger.info({ taskId: id, queueState: state, removed }, 'cancel requested');
      const view = await guard(redis, () => store.records.view(id));
      res.status(202).json(view ? withTenant(view, task) : view);
    },
  });

  return router;
}

/** The view as the API shows it: with the tenant the task belongs to. */
export function withTenant(view: TaskView, task: OwnedTask): TaskView {
  return { ...view, tenant: task.tenant };
}

function accepted(id: string, status: TaskAccepted['status'], createdAt: string): TaskAccepted {
  return { id, status, createdAt, links: taskLinks(id) };
}

/** Idempotency keys are scoped per tenant, so two tenants cannot collide or probe each other's. */
function idempotencyHashOf(header: string | undefined, tenant: string): string | undefined {
  if (header === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(header)) {
    throw new InvalidRequestError('Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 _ . : -', {
      header: 'Idempotency-Key',
    });
  }
  return createHash('sha256').update(`tenant:${tenant}`).update('\u0000').update(header).digest('hex');
}

function parseTaskRequest(body: unknown): TaskRequest {
  // JSON.parse makes `"__proto__"` an own key; zod's record would assign it (a no-op on a
  // prototype setter) and accept the body minus that key. Refuse it instead of dropping it.
  if (isPlainObject(body) && isPlainObject(body.metadata)) {
    const bad = FORBIDDEN_KEYS.find((k) => Object.hasOwn(body.metadata as object, k));
    if (bad !== undefined) {
      throw new InvalidRequestError(`invalid request body: metadata: key ${bad} is not allowed`, {
        issues: [
          {
            path: 'metadata',
            message: 'metadata keys __proto__, constructor and prototype are not allowed',
            code: 'custom',
          },
        ],
      });
    }
  }
  const parsed = TaskRequest.safeParse(body);
  if (!parsed.success) throw InvalidRequestError.fromZod(parsed.error);
  return parsed.data;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
