import type { Request, Response } from 'express';
import { BatchItem, type BatchItemResult, BatchRequest, type BatchResult } from '@research/contracts';
import { callerOf } from '../auth.js';
import { ApiError, InvalidRequestError } from '../errors.js';
import type { Submission, Submitter } from '../submit.js';
import { idempotencyHashOf, parseTaskRequest } from './submit-input.js';

/**
 * `POST /v1/jobs/batch`: up to 1,000 tasks in one request, each read on its own. The answer is
 * 200 whenever the batch itself could be read (an object with 1 to 1,000 `tasks`), with one
 * result per item in order — `{id}` or `{error: {code, message}}` — so a client retries exactly
 * the items that failed; a batch that cannot be read at all gets the 4xx of a single submit.
 * Each item may carry its own `idempotencyKey`, and counts against the tenant's queued quota on
 * its own.
 */
export function batchHandler(submitter: Submitter) {
  return async (req: Request, res: Response): Promise<void> => {
    const { tenant } = callerOf(res.locals);
    const parsed = BatchRequest.safeParse(req.body);
    if (!parsed.success) throw InvalidRequestError.fromZod(parsed.error);
    const results: (BatchItemResult | undefined)[] = new Array(parsed.data.tasks.length);
    const submissions: Submission[] = [];
    const positions: number[] = [];
    parsed.data.tasks.forEach((raw, i) => {
      try {
        const { idempotencyKey, ...request } = parseTaskRequest(raw, BatchItem, `task ${i}`);
        const idempotencyHash = idempotencyHashOf(idempotencyKey, tenant, 'idempotencyKey');
        submissions.push(idempotencyHash === undefined ? { request } : { request, idempotencyHash });
        positions.push(i);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        results[i] = { error: { code: err.code, message: err.message } };
      }
    });
    const outcomes = submissions.length > 0 ? await submitter.submit(tenant, submissions) : [];
    outcomes.forEach((outcome, k) => {
      results[positions[k]!] = outcome.ok
        ? { id: outcome.id }
        : { error: { code: outcome.error.code, message: outcome.error.message } };
    });
    const all = results.map((r) => r!);
    const accepted = all.filter((r) => 'id' in r).length;
    const body: BatchResult = { results: all, accepted, refused: all.length - accepted };
    res.status(200).json(body);
  };
}
