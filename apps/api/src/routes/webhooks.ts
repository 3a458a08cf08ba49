import { Router } from 'express';
import type { Env } from '@research/config';
import type { TaskRequest, TaskWebhook, WebhookDeliveries } from '@research/contracts';
import type { ApiDeps } from '../deps.js';
import { InvalidRequestError } from '../errors.js';
import { guard } from '../redis-guard.js';
import { taskRoute } from '../task-routes.js';

/**
 * Where a new task's deliveries go: its own `webhook`, else its tenant's default
 * (TENANT_WEBHOOK_URLS), else nowhere. A task's own webhook with no WEBHOOK_SECRET to sign it is
 * refused (400 `webhooks_disabled`): an unsigned delivery is one a receiver cannot trust.
 */
export function taskWebhook(env: Env, tenant: string, request: TaskRequest): TaskWebhook | undefined {
  if (request.webhook) {
    if (!env.WEBHOOK_SECRET)
      throw new InvalidRequestError(
        'this server has no WEBHOOK_SECRET to sign deliveries with, so tasks cannot have a webhook',
        { field: 'webhook' },
        'webhooks_disabled',
      );
    return request.webhook;
  }
  const url = env.TENANT_WEBHOOK_URLS[tenant];
  return url && env.WEBHOOK_SECRET ? { url } : undefined;
}

/** `GET /v1/jobs/:id/webhooks`: the task's destination and every delivery with its attempts. */
export function webhooksRouter(deps: ApiDeps): Router {
  const { redis, store } = deps;
  const router = Router();
  taskRoute(router, deps, '/jobs/:id/webhooks', {
    get: async (_req, res, task) => {
      const [webhook, deliveries] = await guard(redis, () =>
        Promise.all([store.webhooks.destination(task.id), store.webhooks.list(task.id)]),
      );
      const body: WebhookDeliveries = { ...(webhook ? { webhook } : {}), deliveries };
      res.json(body);
    },
  });
  return router;
}
