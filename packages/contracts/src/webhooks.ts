import { z } from 'zod';

/** What a webhook may be told about: `final` (every final status, the default) and `progress` (each finished step). */
export const WEBHOOK_EVENTS = ['final', 'progress'] as const;
export const WebhookEvent = z.enum(WEBHOOK_EVENTS);
export type WebhookEvent = z.infer<typeof WebhookEvent>;

/**
 * A task's webhook (`webhook` at submit, or its tenant's default): where its deliveries go.
 * Only http and https; whether the destination may be reached is the egress policy's to say,
 * at delivery time (a refused one is recorded as `egress_denied`).
 */
export const TaskWebhook = z.strictObject({
  url: z
    .url({ protocol: /^https?$/, error: 'webhook.url must be an http or https URL' })
    .max(2_048, 'webhook.url is longer than 2048 characters'),
  /** Default: `["final"]`. */
  events: z
    .array(WebhookEvent)
    .min(1, 'webhook.events must name at least one of final, progress')
    .max(WEBHOOK_EVENTS.length)
    .refine((e) => new Set(e).size === e.length, 'webhook.events lists an event twice')
    .optional(),
});
export type TaskWebhook = z.infer<typeof TaskWebhook>;

/** How one attempt of a delivery ended: delivered (2xx), to be tried again, or given up. */
export const WebhookOutcome = z.enum(['delivered', 'retrying', 'failed']);
export type WebhookOutcome = z.infer<typeof WebhookOutcome>;

/** One POST of a delivery (or a refusal before any connection: `error.code` `egress_denied`). */
export const WebhookAttempt = z.object({
  attempt: z.number().int().positive(),
  at: z.iso.datetime(),
  /** The receiver's HTTP status, when it answered. */
  statusCode: z.number().int().optional(),
  /** Why the attempt failed without an answer (`egress_denied`, `fetch_timeout`, `fetch_failed`, …) or with a non-2xx one (`http_error`). */
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  durationMs: z.number().nonnegative(),
  outcome: WebhookOutcome,
});
export type WebhookAttempt = z.infer<typeof WebhookAttempt>;

/** One message to the webhook (its `webhook-id`), with every attempt to deliver it. */
export const WebhookDelivery = z.object({
  /** The `webhook-id` header: the same on every attempt, so a receiver can drop a repeat. */
  id: z.string(),
  event: WebhookEvent,
  /** The payload's `type`: `task.completed`, `task.failed`, `task.cancelled`, `task.progress`. */
  type: z.string(),
  enqueuedAt: z.iso.datetime(),
  /** `queued`: not attempted yet; then the outcome of its last attempt. */
  status: z.enum(['queued', 'delivered', 'retrying', 'failed']),
  attempts: z.array(WebhookAttempt),
});
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

/** `GET /v1/jobs/:id/webhooks`. */
export const WebhookDeliveries = z.object({
  /** The task's destination (its own, or its tenant's default); absent: the task has no webhook. */
  webhook: TaskWebhook.optional(),
  deliveries: z.array(WebhookDelivery),
});
export type WebhookDeliveries = z.infer<typeof WebhookDeliveries>;
