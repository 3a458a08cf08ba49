import { MAX_BATCH_TASKS, type TaskRequest } from '@research/contracts';
import { ApiError, ConnectionError, TimeoutError, type ResearchClient } from '@research/client';

/** What the submit phase needs of a task's record (see `TaskRecord`). */
export interface SubmitRecord {
  index: number;
  id?: string;
  submitStartMs: number;
  submitEndMs?: number;
  submitError?: string;
}

export interface SubmitPlan {
  client: ResearchClient;
  /** Requests in flight at most: single submits, or batches. */
  concurrency: number;
  /** Tasks per `POST /v1/jobs/batch`; undefined submits one task per `POST /v1/jobs`. */
  batch?: number;
  deadlineMs: number;
  requestFor(index: number): TaskRequest;
  /** The idempotency key of task `index`: a retried request never makes a second task. */
  keyFor(index: number): string;
  onAccepted(record: SubmitRecord): void;
  errors: { submitSamples: string[]; submitRetries: number };
}

/** Retries of one request that failed in a way a retry may get past (a dropped connection, 429, 502, 503). */
const MAX_RETRIES = 3;

/**
 * Submits every record's task, singly or in batches. Either way each task carries its own
 * idempotency key, so retrying a whole batch after a dropped connection is safe. In a batch,
 * each task's submit latency is its batch's.
 */
export async function submitAll(records: SubmitRecord[], plan: SubmitPlan): Promise<void> {
  if (plan.batch === undefined) {
    await mapLimit(records, plan.concurrency, async (r) => {
      r.submitStartMs = Date.now();
      try {
        const accepted = await withRetries(plan, () =>
          plan.client.submit(plan.requestFor(r.index), { idempotencyKey: plan.keyFor(r.index) }),
        );
        r.id = accepted.id;
        r.submitEndMs = Date.now();
        plan.onAccepted(r);
      } catch (err) {
        refuse(plan, r, errorText(err));
      }
    });
    return;
  }
  const size = Math.min(plan.batch, MAX_BATCH_TASKS);
  const batches: SubmitRecord[][] = [];
  for (let i = 0; i < records.length; i += size) batches.push(records.slice(i, i + size));
  await mapLimit(batches, plan.concurrency, async (batch) => {
    const startMs = Date.now();
    for (const r of batch) r.submitStartMs = startMs;
    try {
      const { results } = await withRetries(plan, () =>
        plan.client.batch(batch.map((r) => ({ ...plan.requestFor(r.index), idempotencyKey: plan.keyFor(r.index) }))),
      );
      const endMs = Date.now();
      batch.forEach((r, k) => {
        const result = results[k];
        if (result && 'id' in result) {
          r.id = result.id;
          r.submitEndMs = endMs;
          plan.onAccepted(r);
        } else {
          refuse(plan, r, result ? `${result.error.code}: ${result.error.message}` : 'no result for this item', endMs);
        }
      });
    } catch (err) {
      const text = errorText(err);
      for (const r of batch) refuse(plan, r, text);
    }
  });
}

async function withRetries<T>(plan: SubmitPlan, send: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (attempt >= MAX_RETRIES || !retryable(err) || Date.now() >= plan.deadlineMs) throw err;
      plan.errors.submitRetries += 1;
      await sleep(200 * 2 ** attempt);
    }
  }
}

function refuse(plan: SubmitPlan, r: SubmitRecord, text: string, endMs = Date.now()): void {
  r.submitError = text;
  r.submitEndMs = endMs;
  const samples = plan.errors.submitSamples;
  if (samples.length < 10 && !samples.includes(text)) samples.push(text);
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}

function retryable(err: unknown): boolean {
  if (err instanceof ConnectionError || err instanceof TimeoutError) return true;
  return err instanceof ApiError && (err.status === 429 || err.status === 503 || err.status === 502);
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.status} ${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
