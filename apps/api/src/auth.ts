import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { UnauthorizedError } from './errors.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Bearer-key auth for `/v1`. Keys are compared as SHA-256 digests with `timingSafeEqual`, and
 * every key is compared, so neither a key's length nor its position leaks through timing.
 * The matched key is left in `res.locals.apiKey` (idempotency keys are scoped by it).
 */
export function bearerAuth(keys: readonly string[]): RequestHandler {
  const digests = keys.map((k) => ({ key: k, digest: sha256(k) }));
  return (req, res, next) => {
    const header = req.get('authorization');
    const match = header === undefined ? null : /^Bearer[ \t]+([^\s]{1,4096})[ \t]*$/i.exec(header);
    const token = match?.[1];
    if (token === undefined) return next(new UnauthorizedError());
    const given = sha256(token);
    let found: string | undefined;
    for (const { key, digest } of digests) {
      if (timingSafeEqual(given, digest) && found === undefined) found = key;
    }
    if (found === undefined) return next(new UnauthorizedError('invalid bearer key'));
    res.locals.apiKey = found;
    next();
  };
}

/** The key `bearerAuth` accepted for this request. */
export function apiKeyOf(locals: Record<string, unknown>): string {
  const key = locals.apiKey;
  if (typeof key !== 'string') throw new UnauthorizedError();
  return key;
}
