import type { RequestHandler } from 'express';
import { MethodNotAllowedError } from '../errors.js';

/** Last handler of a route: any other method gets 405 with `Allow`. GET routes also answer HEAD. */
export function methodNotAllowed(allowed: readonly string[]): RequestHandler {
  const list = allowed.includes('GET') ? [...allowed, 'HEAD'] : [...allowed];
  return (req, _res, next) => next(new MethodNotAllowedError(req.method, list));
}
