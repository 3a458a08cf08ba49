import { Router } from 'express';
import { FINAL_STATUSES, MAX_BATCH_TASKS, type TaskAccepted, type TaskView } from '@research/contracts';
import { FairShare, QueuedQuota } from '@research/queue';
import { callerOf } from '../auth.js';
import { jsonBody } from '../body.js';
import type { ApiDeps } from '../deps.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { guard } from '../redis-guard.js';
import { Submitter } from '../submit.js';
import { type OwnedTask, taskRoute } from '../task-routes.js';
import { batchHandler } from './batch.js';
import { listTasks } from './list.js';
import { methodNotAllowed } from './method.js';
import { idempotencyHashOf, parseTaskRequest } from './submit-input.js';
import { taskWebhook } from './webhooks.js';

export function taskLinks(id: string): TaskAccepted['links'] {
  const self = `/v1/jobs/${id}`;
  return { self, events: `${self}/events`, files: `${self}/files`, cancel: `${self}/cancel` };
}

/**
 * `POST /v1/jobs`, `GET /v1/jobs`, `POST /v1/jobs/batch`, `GET|DELETE /v1/jobs/:id`,
 * `POST /v1/jobs/:id/cancel`.
 */
export function jobsRouter(deps: ApiDeps & Required<Pick<ApiDeps, 'expiry'>>): Router {
  const { env, redis, store, queue, expiry, logger } = deps;
  const router = Router();
  const quota = new QueuedQuota(redis, env.QUEUE_PREFIX, env.TENANT_MAX_QUEUED);
  const submitter = new Submitter({
    redis,
    store,
    queue,
    expiry,
    quota,
    fair: new FairShare(redis, env.QUEUE_PREFIX),
    webhookOf: (tenant, request) => taskWebhook(env, tenant, request),
    logger,
    defaultMaxSteps: env.TASK_MAX_STEPS,
    // As many singles as fill one batch body, so a group's script is never larger than a batch's.
    maxGroup: Math.max(1, Math.min(MAX_BATCH_TASKS, Math.floor(env.MAX_BATCH_BODY_BYTES / env.MAX_BODY_BYTES))),
  });

  router
    .route('/jobs')
    .post(...jsonBody({ maxBodyBytes: env.MAX_BODY_BYTES, bodyTimeoutMs: env.BODY_TIMEOUT_MS }), async (req, res) => {
      const { tenant } = callerOf(res.locals);
      const idempotencyHash = idempotencyHashOf(req.get('idempotency-key'), tenant);
      const request = parseTaskRequest(req.body);
      const webhook = submitter.webhookOf(tenant, request);
      const outcome = await submitter.submitOne(tenant, {
        request,
        ...(idempotencyHash === undefined ? {} : { idempotencyHash }),
        ...(webhook === undefined ? {} : { webhook }),
      });
      if (!outcome.ok) throw outcome.error;
      const { id, created, createdAt } = outcome;
      if (!created) {
        const existing = await guard(redis, () => store.records.view(id));
        res.status(202).json(accepted(id, existing?.status ?? 'queued', existing?.createdAt ?? createdAt));
        return;
      }
      res
        .status(202)
        .location(taskLinks(id).self)
        .json(accepted(id, 'queued', createdAt));
    })
    .get(async (req, res) => listTasks(deps, req, res))
    .all(methodNotAllowed(['GET', 'POST']));

  // Before the `/jobs/:id` routes: they would take `batch` for an id (and answer 405 to a POST).
  router
    .route('/jobs/batch')
    .post(
      ...jsonBody({ maxBodyBytes: env.MAX_BATCH_BODY_BYTES, bodyTimeoutMs: env.BODY_TIMEOUT_MS }),
      batchHandler(submitter),
    )
    .all(methodNotAllowed(['POST']));

  taskRoute(router, deps, '/jobs/:id', {
    get: async (_req, res, task) => {
      const view = await guard(redis, () => store.records.view(task.id));
      if (!view) throw new NotFoundError(`no job ${task.id}`);
      res.json(withTenant(view, task));
    },
    delete: async (_req, res, task) => {
      const { id } = task;
      const notFinal = (status: string) =>
        new ConflictError(
          'not_finished',
          `job ${id} is ${status}: only a finished job can be deleted; cancel it first (POST /v1/jobs/${id}/cancel), then delete it`,
          { status },
        );
      if (!FINAL_STATUSES.includes(task.status)) throw notFinal(task.status);
      const deletion = await guard(redis, () => store.deletion.remove(id));
      if (!deletion.deleted) {
        if (deletion.status === undefined) throw new NotFoundError(`no job ${id}`);
        throw notFinal(deletion.status);
      }
      // The jobs go too (their data holds the prompt): the task job with its step jobs, and an
      // expiry check that may be left. Either may be gone already (job retention).
      await Promise.all([
        guard(redis, () => queue.remove(id, { removeChildren: true })),
        guard(redis, () => expiry.remove(id)),
      ]).catch((err: unknown) => logger.warn({ err, taskId: id }, "could not remove a deleted task's jobs"));
      // The workspace is in the sandbox of the worker that ran the task last; that worker removes it.
      if (deletion.workerId) {
        const workerId = deletion.workerId;
        await guard(redis, () => store.workspaces.request(workerId, id)).catch((err: unknown) =>
          logger.warn({ err, taskId: id, workerId }, "could not ask for a deleted task's workspace to be removed"),
        );
      }
      logger.info({ taskId: id, tenant: task.tenant }, 'task deleted');
      res.status(204).end();
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
