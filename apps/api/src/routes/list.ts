import type { Request, Response } from 'express';
import { TENANT_PATTERN } from '@research/config';
import { TAG_PATTERN, type TaskList, TaskListQuery } from '@research/contracts';
import { isIndexPosition } from '@research/queue';
import { type Caller, callerOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { InvalidRequestError } from '../errors.js';
import { guard } from '../redis-guard.js';

/** A cursor is the base64url of the last position of the page before: opaque to clients, checked here. */
export function encodeCursor(position: string): string {
  return Buffer.from(position, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const position = Buffer.from(cursor, 'base64url').toString('utf8');
  // base64url decoding skips what it cannot read, so a changed cursor must also encode back to itself.
  if (!isIndexPosition(position) || encodeCursor(position) !== cursor) {
    throw new InvalidRequestError('cursor: not a cursor this API gave out (use nextCursor as it came)', {
      issues: [{ path: 'cursor', message: 'invalid cursor', code: 'custom' }],
    });
  }
  return position;
}

/** The tenant a query covers: the caller's own; for an admin, `tenant=` or every tenant (undefined). */
export function scopeOf(caller: Caller, tenant: string | undefined): string | undefined {
  if (tenant !== undefined && !TENANT_PATTERN.test(tenant)) {
    throw new InvalidRequestError('tenant: a tenant is 1 to 64 letters, digits, "_", "." or "-"', {
      issues: [{ path: 'tenant', message: 'invalid tenant', code: 'custom' }],
    });
  }
  if (caller.admin) return tenant;
  if (tenant !== undefined && tenant !== caller.tenant) {
    throw new InvalidRequestError('tenant: only an admin key may name a tenant', {
      issues: [{ path: 'tenant', message: 'only an admin key may name a tenant', code: 'custom' }],
    });
  }
  return caller.tenant;
}

/** A query string parsed against `schema`; repeated parameters are refused rather than guessed at. */
export function parseQuery<T>(
  req: Request,
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } },
): T {
  const query = req.query as Record<string, unknown>;
  for (const [key, value] of Object.entries(query)) {
    if (typeof value !== 'string') {
      throw new InvalidRequestError(`${key}: give it once, as one value`, {
        issues: [{ path: key, message: 'repeated or structured parameter', code: 'custom' }],
      });
    }
  }
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw InvalidRequestError.fromZod(parsed.error, 'query');
  return parsed.data;
}

/** `GET /v1/jobs`: the caller's tasks, newest first, one page at a time. */
export async function listTasks(deps: ApiDeps, req: Request, res: Response): Promise<void> {
  const caller = callerOf(res.locals);
  const q = parseQuery(req, TaskListQuery);
  if (q.tag !== undefined && !TAG_PATTERN.test(q.tag)) {
    throw new InvalidRequestError('tag: a tag is 1 to 64 letters, digits, "_", ".", ":" or "-"', {
      issues: [{ path: 'tag', message: 'invalid tag', code: 'custom' }],
    });
  }
  const tenant = scopeOf(caller, q.tenant);
  const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  const page = await guard(deps.redis, () =>
    deps.store.index.list({
      ...(tenant === undefined ? {} : { tenant }),
      ...(q.status === undefined ? {} : { status: q.status }),
      ...(q.tag === undefined ? {} : { tag: q.tag }),
      ...(q.createdAfter === undefined ? {} : { createdAfterMs: Date.parse(q.createdAfter) }),
      ...(q.createdBefore === undefined ? {} : { createdBeforeMs: Date.parse(q.createdBefore) }),
      limit: q.limit,
      ...(after === undefined ? {} : { after }),
    }),
  );
  const body: TaskList = {
    items: page.items,
    nextCursor: page.next === undefined ? null : encodeCursor(page.next),
  };
  res.json(body);
}
