import {
  FINAL_STATUSES,
  TaskWebhook,
  type TaskEvent,
  type TaskStatus,
  type WebhookAttempt,
  WebhookDelivery,
  type WebhookEvent,
  type WebhookPayload,
} from '@research/contracts';
import { Queue } from 'bullmq';
import { jobOptions, queueOptions, type WebhookJobData, JOBS } from '../catalog.js';
import type { Redis } from '../connection.js';
import { WEBHOOK_QUEUE } from '../names.js';
import type { TaskEvents } from './events.js';
import type { TaskKeys } from './task-keys.js';

/** How deliveries are retried; the catalog's policy when absent. */
export interface WebhookRetry {
  /** Attempts of one delivery. Default: the catalog's (8). */
  attempts?: number;
  /** Wait before the second attempt, doubled after each failure. Default: the catalog's (5_000). */
  backoffMs?: number;
}

/**
 * A task's webhook deliveries: each one a BullMQ job in the `webhooks` queue (retried with
 * backoff) and a record of every attempt, kept with the task and shown at
 * `GET /v1/jobs/:id/webhooks`. A delivery's id is its `webhook-id` and its job id, derived
 * from what it reports (`<task>-completed`, `<task>-step-3`), so reporting the same thing twice
 * (a status write retried) queues one delivery.
 */
export class TaskWebhooks {
  private queue: Queue<WebhookJobData> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
    private readonly events: TaskEvents,
    private readonly retentionSeconds: number,
    private readonly retry: WebhookRetry = {},
    /** Where the webhook queue is opened (see TaskStoreOptions.queueConnection). */
    private readonly queueConnection: Redis = redis,
  ) {}

  /** The task's destination (set at creation: its own, or its tenant's default); undefined: none. */
  async destination(id: string): Promise<TaskWebhook | undefined> {
    return parseWebhook(await this.redis.hget(this.keys.record(id), 'webhook'));
  }

  /** Queues the delivery of task `id`'s final status `status`, if the task has a webhook (`webhook`: its record's field). */
  async final(id: string, status: TaskStatus, at: string, webhook: string | null | undefined): Promise<void> {
    const dest = parseWebhook(webhook);
    if (!dest || !FINAL_STATUSES.includes(status) || !wants(dest, 'final')) return;
    const [tenant, createdAt, startedAt, progress, result, error] = await this.redis.hmget(
      this.keys.record(id),
      'tenant',
      'createdAt',
      'startedAt',
      'progress',
      'result',
      'error',
    );
    const data: WebhookPayload['data'] = { id, status, finishedAt: at };
    if (tenant) data.tenant = tenant;
    if (createdAt) data.createdAt = createdAt;
    if (startedAt) data.startedAt = startedAt;
    if (progress) data.progress = JSON.parse(progress) as WebhookPayload['data']['progress'];
    if (result) data.result = JSON.parse(result) as WebhookPayload['data']['result'];
    if (error) data.error = JSON.parse(error) as WebhookPayload['data']['error'];
    await this.add(id, dest, 'final', { type: `task.${status}`, timestamp: at, data }, `${id}-${status}`);
  }

  /** Queues a `task.progress` delivery for a finished step, if the task's webhook asks for progress. */
  async progress(
    id: string,
    webhook: string | null | undefined,
    step: { index: number; action: string; exitCode?: number },
  ): Promise<void> {
    const dest = parseWebhook(webhook);
    if (!dest || !wants(dest, 'progress')) return;
    const at = new Date().toISOString();
    await this.add(
      id,
      dest,
      'progress',
      { type: 'task.progress', timestamp: at, data: { id, status: 'running', step } },
      `${id}-step-${step.index}`,
    );
  }

  private async add(
    id: string,
    dest: TaskWebhook,
    event: WebhookEvent,
    payload: WebhookPayload,
    deliveryId: string,
  ): Promise<void> {
    const delivery: WebhookDelivery = {
      id: deliveryId,
      event,
      type: payload.type,
      enqueuedAt: new Date().toISOString(),
      status: 'queued',
      attempts: [],
    };
    const key = this.keys.webhooks(id);
    const fresh = await this.redis.hsetnx(key, deliveryId, JSON.stringify(delivery));
    await this.redis.expire(key, this.retentionSeconds);
    // Already queued, unless no attempt was made yet: then the job may never have been added (the
    // process died in between); adding it again is a no-op while it exists (the job id is the delivery's).
    if (fresh === 0 && (await this.statusOf(id, deliveryId)) !== 'queued') return;
    const data: WebhookJobData = {
      taskId: id,
      deliveryId,
      event,
      type: payload.type,
      url: dest.url,
      payload: JSON.stringify(payload),
    };
    this.queue ??= new Queue<WebhookJobData>(WEBHOOK_QUEUE, queueOptions(this.queueConnection, this.keys.prefix));
    const { attempts, backoffMs } = this.retry;
    const retryOptions = {
      ...(attempts === undefined ? {} : { attempts }),
      ...(backoffMs === undefined ? {} : { backoff: { ...JOBS.webhook.retry.backoff, delay: backoffMs } }),
    };
    await this.queue.add(JOBS.webhook.name(data), data, jobOptions('webhook', { jobId: deliveryId, ...retryOptions }));
  }

  /** The final status of task `id` was queued for delivery: it leaves the outbox. */
  async settled(id: string): Promise<void> {
    await this.redis.zrem(this.keys.webhookOutbox(), id);
  }

  /**
   * Queues the final deliveries of tasks that reached their final status at least `olderThanMs`
   * ago and are still in the outbox: the status write and the outbox entry are one script, so a
   * process killed before it queued the delivery leaves the task here. Returns how many.
   */
  async recover(olderThanMs: number, count = 100): Promise<number> {
    const outbox = this.keys.webhookOutbox();
    const ids = await this.redis.zrangebyscore(outbox, '-inf', Date.now() - olderThanMs, 'LIMIT', 0, count);
    for (const id of ids) {
      const [status, finishedAt, webhook] = await this.redis.hmget(
        this.keys.record(id),
        'status',
        'finishedAt',
        'webhook',
      );
      if (status && finishedAt) await this.final(id, status as TaskStatus, finishedAt, webhook);
      await this.settled(id);
    }
    return ids.length;
  }

  private async statusOf(id: string, deliveryId: string): Promise<WebhookDelivery['status'] | undefined> {
    const raw = await this.redis.hget(this.keys.webhooks(id), deliveryId);
    return raw ? WebhookDelivery.parse(JSON.parse(raw)).status : undefined;
  }

  /** Records one attempt of a delivery (and its `webhook` event on the task's stream). */
  async attempted(id: string, deliveryId: string, attempt: WebhookAttempt): Promise<void> {
    const key = this.keys.webhooks(id);
    const raw = await this.redis.hget(key, deliveryId);
    if (!raw) return; // the task was deleted meanwhile
    const delivery = WebhookDelivery.parse(JSON.parse(raw));
    if (delivery.attempts.some((a) => a.attempt === attempt.attempt)) return; // a stalled job's repeat
    delivery.attempts.push(attempt);
    delivery.status = attempt.outcome;
    await this.redis.multi().hset(key, deliveryId, JSON.stringify(delivery)).expire(key, this.retentionSeconds).exec();
    const { at, ...rest } = attempt;
    const event: TaskEvent = { type: 'webhook', at, delivery: deliveryId, event: delivery.event, ...rest };
    await this.events.append(id, event);
  }

  /** Every delivery of the task, oldest first. */
  async list(id: string): Promise<WebhookDelivery[]> {
    const all = await this.redis.hgetall(this.keys.webhooks(id));
    return Object.values(all)
      .map((raw) => WebhookDelivery.parse(JSON.parse(raw)))
      .sort((a, b) => a.enqueuedAt.localeCompare(b.enqueuedAt) || a.id.localeCompare(b.id));
  }

  async close(): Promise<void> {
    await this.queue?.close();
    this.queue = undefined;
  }
}

function parseWebhook(raw: string | null | undefined): TaskWebhook | undefined {
  if (!raw) return undefined;
  const parsed = TaskWebhook.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : undefined;
}

function wants(dest: TaskWebhook, event: WebhookEvent): boolean {
  return (dest.events ?? ['final']).includes(event);
}
