import { Router } from 'express';
import { MAX_USAGE_DAYS, UsageQuery, type UsageReport } from '@research/contracts';
import { callerOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { InvalidRequestError } from '../errors.js';
import { guard } from '../redis-guard.js';
import { parseQuery, scopeOf } from './list.js';
import { methodNotAllowed } from './method.js';

const DAY_MS = 86_400_000;
/** Days `GET /v1/usage` covers when `from` is not given: the 30 days up to `to`. */
const DEFAULT_DAYS = 30;

const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** `GET /v1/usage?from=&to=`: a tenant's usage per UTC day and summed (an admin's: any tenant's, or all together). */
export function usageRouter(deps: ApiDeps): Router {
  const { redis, store } = deps;
  const router = Router();

  router
    .route('/usage')
    .get(async (req, res) => {
      const caller = callerOf(res.locals);
      const q = parseQuery(req, UsageQuery);
      const toMs = q.to === undefined ? Date.now() : Date.parse(q.to);
      const fromMs = q.from === undefined ? toMs - (DEFAULT_DAYS - 1) * DAY_MS : Date.parse(q.from);
      const [from, to] = [dayOf(fromMs), dayOf(toMs)];
      if (from > to) {
        throw new InvalidRequestError(`from (${from}) is after to (${to})`, {
          issues: [{ path: 'from', message: 'from is after to', code: 'custom' }],
        });
      }
      const count = Math.round((Date.parse(to) - Date.parse(from)) / DAY_MS) + 1;
      if (count > MAX_USAGE_DAYS) {
        throw new InvalidRequestError(`from..to spans ${count} days; at most ${MAX_USAGE_DAYS} at once`, {
          issues: [{ path: 'from', message: `more than ${MAX_USAGE_DAYS} days`, code: 'custom' }],
        });
      }
      const dates = Array.from({ length: count }, (_, i) => dayOf(Date.parse(from) + i * DAY_MS));
      const tenant = scopeOf(caller, q.tenant);
      const sums = await guard(redis, async () =>
        store.usage.sums(tenant === undefined ? await store.usage.tenants() : [tenant], dates),
      );
      const body: UsageReport = { tenant: tenant ?? null, from, to, usage: sums.usage, days: sums.days };
      res.json(body);
    })
    .all(methodNotAllowed(['GET']));

  return router;
}
