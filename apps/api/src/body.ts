import express, { type RequestHandler } from 'express';
import { PayloadTooLargeError, RequestTimeoutError, UnsupportedMediaTypeError, sendError } from './errors.js';

export interface BodyLimits {
  maxBodyBytes: number;
  /** Time the whole body has to arrive, from when the route starts reading it. */
  bodyTimeoutMs: number;
}

/**
 * What a route that reads a JSON body puts in front of its handler, in this order:
 * - 415 for another Content-Type, before reading (a form post gets 415, not "invalid JSON");
 * - 413 at once for a declared Content-Length over the limit. body-parser would refuse it too,
 *   but only after draining the whole declared body, so a client that declared 10 MB and sent
 *   nothing was held until Node's request timeout cut it with a bare 408;
 * - a deadline for the body: a client that stops sending half-way gets 408 `request_timeout`
 *   in the error shape after `bodyTimeoutMs`, and the connection is closed;
 * - the JSON parser itself (which still enforces the limit on chunked bodies as they stream).
 *
 * Answers sent before the body was read carry `Connection: close`: the rest of that body will
 * never be read, so the socket cannot serve another request.
 */
export function jsonBody(limits: BodyLimits): RequestHandler[] {
  const requireJson: RequestHandler = (req, _res, next) => {
    next(req.is(['application/json', '+json']) ? undefined : new UnsupportedMediaTypeError());
  };
  const declaredLength: RequestHandler = (req, res, next) => {
    const declared = Number(req.get('content-length'));
    if (Number.isFinite(declared) && declared > limits.maxBodyBytes) {
      res.set('Connection', 'close');
      throw new PayloadTooLargeError(limits.maxBodyBytes);
    }
    next();
  };
  const deadline: RequestHandler = (req, res, next) => {
    if (req.readableEnded) return next();
    const timer = setTimeout(() => {
      if (req.readableEnded || res.headersSent) return;
      // From a timer: body-parser still holds the request (it would pass an error on only
      // once the body ended, which it never does), so answer here and then end the request.
      sendError(res, new RequestTimeoutError(limits.bodyTimeoutMs));
      res.once('finish', () => req.destroy());
    }, limits.bodyTimeoutMs);
    timer.unref();
    const clear = () => clearTimeout(timer);
    req.once('end', clear);
    req.once('close', clear);
    res.once('close', clear);
    next();
  };
  const json = express.json({ limit: limits.maxBodyBytes, strict: true, type: () => true });
  return [requireJson, declaredLength, deadline, json];
}
