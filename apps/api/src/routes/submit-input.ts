import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { IDEMPOTENCY_KEY_PATTERN, TaskRequest } from '@research/contracts';
import { InvalidRequestError } from '../errors.js';

/** Keys `TaskMetadata`'s record would silently drop (a JSON `__proto__` key becomes a prototype assignment). */
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'];

/** Idempotency keys are scoped per tenant, so two tenants cannot collide or probe each other's. */
export function idempotencyHashOf(
  key: string | undefined,
  tenant: string,
  /** What the key came in, for the message. */
  field = 'Idempotency-Key',
): string | undefined {
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new InvalidRequestError(
      `${field} must be 1-128 characters of A-Z a-z 0-9 _ . : -`,
      field === 'Idempotency-Key' ? { header: field } : { field },
    );
  }
  return createHash('sha256').update(`tenant:${tenant}`).update('\u0000').update(key).digest('hex');
}

/** A submit's body (a task request, or a batch item) checked against `schema`; `what` names it in messages. */
export function parseTaskRequest<S extends z.ZodType = typeof TaskRequest>(
  body: unknown,
  schema: S = TaskRequest as unknown as S,
  what = 'request body',
): z.infer<S> {
  // JSON.parse makes `"__proto__"` an own key; zod's record would assign it (a no-op on a
  // prototype setter) and accept the body minus that key. Refuse it instead of dropping it.
  if (isPlainObject(body) && isPlainObject(body.metadata)) {
    const bad = FORBIDDEN_KEYS.find((k) => Object.hasOwn(body.metadata as object, k));
    if (bad !== undefined) {
      throw new InvalidRequestError(`invalid ${what}: metadata: key ${bad} is not allowed`, {
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
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw InvalidRequestError.fromZod(parsed.error, what);
  return parsed.data;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
