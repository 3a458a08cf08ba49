import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Env, Logger } from '@research/config';
import type { WebhookAttempt } from '@research/contracts';
import {
  type Redis,
  type TaskStore,
  WEBHOOK_QUEUE,
  WebhookJobData,
  duplicateRedis,
  workerOptions,
} from '@research/queue';
import { EgressPolicy, WebhookSender } from '@research/web';

export interface WebhookDelivererOptions {
  store: TaskStore;
  sender: WebhookSender;
  /** Time the receiver has to answer one attempt. */
  timeoutMs: number;
  logger: Logger;
}

/**
 * Runs webhook delivery jobs: one signed POST per attempt, each attempt recorded with the task
 * (outcome, status code, error, duration) before the job completes or fails, so
 * `GET /v1/jobs/:id/webhooks` shows every try. A failed attempt fails the job and BullMQ retries
 * it with the catalog's backoff; a destination the egress policy refuses fails it for good at
 * once (no connection is opened, and no later attempt would be allowed either).
 */
export class WebhookDeliverer {
  constructor(private readonly options: WebhookDelivererOptions) {}

  async process(job: Job): Promise<{ statusCode: number }> {
    const parsed = WebhookJobData.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid webhook payload: ${parsed.error.message}`);
    const { taskId, deliveryId, url, payload } = parsed.data;
    const attempt = job.attemptsMade + 1;
    const lastAttempt = attempt >= (job.opts.attempts ?? 1);
    const at = new Date();
    const sent = await this.options.sender.send(
      { url, id: deliveryId, payload },
      { timeoutMs: this.options.timeoutMs, now: at },
    );
    const record: WebhookAttempt = sent.ok
      ? {
          attempt,
          at: at.toISOString(),
          statusCode: sent.statusCode,
          durationMs: sent.durationMs,
          outcome: 'delivered',
        }
      : {
          attempt,
          at: at.toISOString(),
          ...(sent.statusCode === undefined ? {} : { statusCode: sent.statusCode }),
          error: sent.error,
          durationMs: sent.durationMs,
          outcome: !sent.retryable || lastAttempt ? 'failed' : 'retrying',
        };
    await this.options.store.webhooks.attempted(taskId, deliveryId, record);
    // The board's job log: one line per attempt, beside the API's record of them.
    const answer = record.statusCode === undefined ? '' : ` HTTP ${record.statusCode}`;
    const failure = 'error' in record && record.error ? `, ${record.error.code}` : '';
    await job
      .log(`attempt ${attempt}: ${record.outcome}${answer}${failure} in ${record.durationMs} ms`)
      .catch(() => undefined);
    if (sent.ok) return { statusCode: sent.statusCode };
    const where = { taskId, delivery: deliveryId, attempt, code: sent.error.code };
    if (record.outcome === 'failed') this.options.logger.warn(where, 'webhook delivery failed for good');
    else this.options.logger.info(where, 'webhook attempt failed; it will be retried');
    const message = `${sent.error.code}: ${sent.error.message}`;
    throw sent.retryable ? new Error(message) : new UnrecoverableError(message);
  }
}

/** A final status's delivery is queued within milliseconds; one in the outbox longer than this was dropped. */
const OUTBOX_GRACE_MS = 30_000;

/**
 * The webhook delivery Worker of this process, when WEBHOOK_SECRET is set (without it no task
 * can have a webhook: the API refuses them). Undefined otherwise.
 */
export function startWebhookWorker(
  env: Env,
  store: TaskStore,
  connection: Redis,
  logger: Logger,
): { close: () => Promise<void> } | undefined {
  if (!env.WEBHOOK_SECRET) return undefined;
  const log = logger.child({ part: 'webhooks' });
  const deliverer = new WebhookDeliverer({
    store,
    sender: new WebhookSender(env.WEBHOOK_SECRET, EgressPolicy.fromEnv(env)),
    timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    logger: log,
  });
  const blocking = duplicateRedis(connection);
  const worker = new Worker(
    WEBHOOK_QUEUE,
    (job: Job) => deliverer.process(job),
    // A delivery waits on a receiver, not on the sandbox: several at once cost little.
    workerOptions('webhook', { connection: blocking, prefix: env.QUEUE_PREFIX, concurrency: 8 }),
  );
  worker.on('error', (err) => log.error({ err }, 'webhook worker error'));
  // Final statuses whose delivery was not queued (the process that set them died first).
  const recover = () =>
    void store.webhooks
      .recover(OUTBOX_GRACE_MS)
      .then((n) => n > 0 && log.info({ recovered: n }, 'queued webhook deliveries left in the outbox'))
      .catch((err: unknown) => log.warn({ err }, 'could not read the webhook outbox'));
  const timer = setInterval(recover, OUTBOX_GRACE_MS).unref();
  recover();
  return {
    close: async () => {
      clearInterval(timer);
      await worker.close();
      await blocking.quit().catch(() => blocking.disconnect());
    },
  };
}
