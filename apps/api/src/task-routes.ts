import type { Request, Response, Router } from 'express';
import { DEFAULT_TENANT } from '@research/config';
import { TASK_ID_PATTERN, type TaskStatus } from '@research/contracts';
import { callerOf } from './auth.js';
import type { ApiDeps } from './deps.js';
import { NotFoundError } from './errors.js';
import { guard } from './redis-guard.js';
import { methodNotAllowed } from './routes/method.js';

/** A task the caller may see: it exists and belongs to the caller's tenant (or the caller is an admin). */
export interface OwnedTask {
  id: string;
  tenant: string;
  /** Status when the request was checked. */
  status: TaskStatus;
}

export type TaskHandler = (req: Request, res: Response, task: OwnedTask) => Promise<void>;

type Method = 'get' | 'post' | 'delete';

/** The same answer for a task that does not exist and for another tenant's: ids are never confirmed. */
const noSuchTask = (id: string) => new NotFoundError(`no job ${id}`);

/**
 * Loads the `:id` task of a request and checks it is the caller's. A malformed id, an unknown
 * id and another tenant's task all get the same 404. Tasks recorded before tenants existed
 * belong to {@link DEFAULT_TENANT}.
 */
export async function loadOwnedTask(deps: ApiDeps, req: Request, res: Response): Promise<OwnedTask> {
  const caller = callerOf(res.locals);
  const id = req.params.id;
  if (typeof id !== 'string' || !TASK_ID_PATTERN.test(id)) throw new NotFoundError('no such job');
  const { redis, store } = deps;
  // Two commands back to back on one connection: one round trip.
  const [tenant, status] = await guard(redis, () =>
    Promise.all([store.records.tenant(id), store.lifecycle.status(id)]),
  );
  if (status === undefined) throw noSuchTask(id);
  const owner = tenant ?? DEFAULT_TENANT;
  if (!caller.admin && owner !== caller.tenant) throw noSuchTask(id);
  return { id, tenant: owner, status };
}

/**
 * Declares a route under `/jobs/:id` — the only way task routes are made, so every one of
 * them, now and later, checks ownership before its handler runs: the handler receives the
 * {@link OwnedTask} and never sees another tenant's. Methods not listed answer 405 (with
 * `Allow`) without looking at the task, the same for every id.
 */
export function taskRoute(
  router: Router,
  deps: ApiDeps,
  path: `/jobs/:id${string}`,
  handlers: Partial<Record<Method, TaskHandler>>,
): void {
  const route = router.route(path);
  const methods = Object.keys(handlers) as Method[];
  for (const method of methods) {
    const handler = handlers[method]!;
    route[method](async (req: Request, res: Response) => {
      const task = await loadOwnedTask(deps, req, res);
      await handler(req, res, task);
    });
  }
  route.all(methodNotAllowed(methods.map((m) => m.toUpperCase())));
}
