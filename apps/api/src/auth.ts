import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { type ApiKey, sha256 } from '@research/config';
import { UnauthorizedError } from './errors.js';
import { clientAddress, type AuthFailureGate, type KeyRateLimit } from './limits.js';

/** Who is calling: the tenant of the key that authenticated the request. */
export interface Caller {
  tenant: string;
  /** An admin key sees and acts on every tenant's tasks. */
  admin: boolean;
  /** The key's public id (start of its digest): what per-key limits count by. */
  keyId: string;
}

/**
 * Bearer-key auth for `/v1`. Keys are compared as SHA-256 digests with `timingSafeEqual`, and
 * every key is compared, so neither a key's length nor its position leaks through timing.
 * The caller is left in `res.locals.caller`. A wrong key counts as a failure of the client's
 * address (a request without any `Authorization` is not a guess and does not), and an address
 * past `AUTH_FAILURE_LIMIT_PER_MIN` gets 429 whatever it sends (see AuthFailureGate). A right key
 * is then counted against its rate (`rateLimit`, see keyRateLimit) in the same round trip to
 * Redis as the address's lockout check; a locked-out address is refused first.
 */
export function bearerAuth(
  keys: readonly ApiKey[],
  failures: AuthFailureGate,
  rateLimit?: KeyRateLimit,
): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization');
    const match = header === undefined ? null : /^Bearer[ \t]+([^\s]{1,4096})[ \t]*$/i.exec(header);
    const token = match?.[1];
    let found: ApiKey | undefined;
    if (token !== undefined) {
      const given = sha256(token);
      for (const key of keys) {
        if (timingSafeEqual(given, key.digest) && found === undefined) found = key;
      }
    }
    if (found === undefined) {
      if (header !== undefined) await failures.recordFailure(clientAddress(req));
      throw new UnauthorizedError(token === undefined ? undefined : 'invalid bearer key');
    }
    const caller: Caller = { tenant: found.tenant, admin: found.admin, keyId: found.id };
    const [lockout, rate] = await Promise.allSettled([
      failures.check(clientAddress(req)),
      rateLimit?.(res, caller.keyId),
    ]);
    if (lockout.status === 'rejected') throw lockout.reason;
    if (rate.status === 'rejected') throw rate.reason;
    res.locals.caller = caller;
    next();
  };
}

/** The caller `bearerAuth` accepted for this request. */
export function callerOf(locals: Record<string, unknown>): Caller {
  const caller = locals.caller as Caller | undefined;
  if (caller === undefined || typeof caller.tenant !== 'string') throw new UnauthorizedError();
  return caller;
}
