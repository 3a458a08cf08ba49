import { z } from 'zod';
import { TaskError, TaskProgress, TaskResult, TaskStatus } from './task.js';

/**
 * The body of a delivery (Standard Webhooks' recommended shape): `type`, when the event
 * happened, and the task as it was then.
 */
export const WebhookPayload = z.object({
  type: z.string(),
  timestamp: z.iso.datetime(),
  data: z.object({
    id: z.string(),
    tenant: z.string().optional(),
    status: TaskStatus,
    createdAt: z.iso.datetime().optional(),
    startedAt: z.iso.datetime().optional(),
    finishedAt: z.iso.datetime().optional(),
    progress: TaskProgress.optional(),
    result: TaskResult.optional(),
    error: TaskError.optional(),
    /** For `task.progress`: the step that just finished. */
    step: z
      .object({ index: z.number().int().nonnegative(), action: z.string(), exitCode: z.number().int().optional() })
      .optional(),
  }),
});
export type WebhookPayload = z.infer<typeof WebhookPayload>;
