import type { ErrorRequestHandler, Response } from 'express';
import { z } from 'zod';
import type { ApiErrorBody } from '@research/contracts';
import type { Logger } from '@research/config';
import { isRedisUnavailable } from '@research/queue';

/**
 * Every error the API answers with. Route code throws these; `errorHandler` is the one place
 * that turns any error into an HTTP response.
 */
export class ApiError extends Error {
  override readonly name: string = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Extra response headers (e.g. `WWW-Authenticate`, `Allow`, `Retry-After`). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(): ApiErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export class InvalidRequestError extends ApiError {
  override readonly name = 'InvalidRequestError';
  constructor(message: string, details?: unknown, code = 'invalid_request') {
    super(400, code, message, details);
  }

  /** Zod issues as `{path, message}` pairs a person can read; capped so a hostile body cannot inflate the answer. */
  static fromZod(error: z.ZodError, what = 'request body'): InvalidRequestError {
    const issues = error.issues.slice(0, MAX_ISSUES).map((i) => ({
      path: i.path.length === 0 ? '(root)' : i.path.map(String).join('.'),
      message: i.message.length > 300 ? `${i.message.slice(0, 299)}…` : i.message,
      code: i.code,
    }));
    const first = issues[0];
    const summary = first ? `${first.path === '(root)' ? '' : `${first.path}: `}${first.message}` : 'invalid';
    return new InvalidRequestError(`invalid ${what}: ${summary}`, {
      issues,
      ...(error.issues.length > MAX_ISSUES ? { omittedIssues: error.issues.length - MAX_ISSUES } : {}),
    });
  }
}

const MAX_ISSUES = 20;

export class UnauthorizedError extends ApiError {
  override readonly name = 'UnauthorizedError';
  constructor(message = 'missing or invalid bearer key (send "Authorization: Bearer <key>")') {
    super(401, 'unauthorized', message, undefined, { 'WWW-Authenticate': 'Bearer realm="research"' });
  }
}

export class NotFoundError extends ApiError {
  override readonly name = 'NotFoundError';
  constructor(message = 'not found', code = 'not_found') {
    super(404, code, message);
  }
}

export class MethodNotAllowedError extends ApiError {
  override readonly name = 'MethodNotAllowedError';
  constructor(method: string, allowed: readonly string[]) {
    super(
      405,
      'method_not_allowed',
      `${method} is not allowed here; use ${allowed.join(' or ')}`,
      { allowed },
      { Allow: allowed.join(', ') },
    );
  }
}

export class ConflictError extends ApiError {
  override readonly name = 'ConflictError';
  constructor(code: string, message: string, details?: unknown) {
    super(409, code, message, details);
  }
}

export class PayloadTooLargeError extends ApiError {
  override readonly name = 'PayloadTooLargeError';
  constructor(limitBytes: number) {
    super(413, 'payload_too_large', `request body is larger than ${limitBytes} bytes`, { limitBytes });
  }
}

export class UnsupportedMediaTypeError extends ApiError {
  override readonly name = 'UnsupportedMediaTypeError';
  constructor(message = 'Content-Type must be application/json') {
    super(415, 'unsupported_media_type', message);
  }
}

export class TooManyRequestsError extends ApiError {
  override readonly name = 'TooManyRequestsError';
  constructor(code: string, message: string, retryAfterSeconds = 5, details?: unknown) {
    super(429, code, message, details, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
  }
}

/** The request's body did not arrive in time (`BODY_TIMEOUT_MS`); the connection is closed after the answer. */
export class RequestTimeoutError extends ApiError {
  override readonly name = 'RequestTimeoutError';
  constructor(timeoutMs: number) {
    super(
      408,
      'request_timeout',
      `the request body did not arrive within ${timeoutMs} ms`,
      { timeoutMs },
      { Connection: 'close' },
    );
  }
}

export class RedisUnavailableError extends ApiError {
  override readonly name = 'RedisUnavailableError';
  constructor(message = 'Redis is unavailable; try again shortly') {
    super(503, 'redis_unavailable', message, undefined, { 'Retry-After': '2' });
  }
}

export class InternalError extends ApiError {
  override readonly name = 'InternalError';
  constructor() {
    super(500, 'internal', 'internal error');
  }
}

/** Shape of the errors body-parser (under express.json) throws. */
interface HttpishError {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  expose?: unknown;
  /** body-parser's limit of the route that refused the body. */
  limit?: unknown;
}

/** Maps anything thrown to an ApiError. Unknown errors become a bare 500 without internals. */
export function toApiError(err: unknown, limits: { maxBodyBytes: number }): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof z.ZodError) return InvalidRequestError.fromZod(err);
  if (typeof err === 'object' && err !== null) {
    const e = err as HttpishError;
    const status =
      typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
    switch (e.type) {
      case 'entity.parse.failed':
        return new InvalidRequestError('request body is not valid JSON', undefined, 'invalid_json');
      case 'entity.too.large':
        // Routes differ in their limit (a batch takes more than a single submit).
        return new PayloadTooLargeError(typeof e.limit === 'number' ? e.limit : limits.maxBodyBytes);
      case 'encoding.unsupported':
        return new UnsupportedMediaTypeError('unsupported Content-Encoding (use identity, gzip, deflate or br)');
      case 'charset.unsupported':
        return new UnsupportedMediaTypeError('unsupported charset (use utf-8)');
      case 'request.aborted':
      case 'request.size.invalid':
      case 'stream.encoding.set':
        return new InvalidRequestError('request body could not be read');
    }
    // Express's router throws a 400 URIError for malformed percent-encoding in the path.
    if (err instanceof URIError || (status !== undefined && status >= 400 && status < 500)) {
      return new InvalidRequestError('malformed request (bad URL encoding or headers)');
    }
  }
  if (isRedisUnavailable(err)) return new RedisUnavailableError();
  return new InternalError();
}

/** The one place errors become HTTP responses. Never sends a stack trace. */
export function errorHandler(logger: Logger, limits: { maxBodyBytes: number }): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const apiError = toApiError(err, limits);
    if (apiError.status >= 500 && !(apiError instanceof RedisUnavailableError)) {
      logger.error({ err, method: req.method, path: req.path }, 'request failed');
    } else {
      logger.debug(
        { code: apiError.code, status: apiError.status, method: req.method, path: req.path },
        'request refused',
      );
    }
    if (res.headersSent) {
      // An SSE stream or file body already started (or a 408 went out while the body was
      // being read): the only honest thing left is to cut it.
      if (!res.writableFinished) res.destroy();
      return;
    }
    sendError(res, apiError);
  };
}

/** Writes an ApiError as the response. Only `errorHandler` and the body deadline (which answers from a timer) call it. */
export function sendError(res: Response, apiError: ApiError): void {
  res.status(apiError.status).set(apiError.headers).json(apiError.toBody());
}
