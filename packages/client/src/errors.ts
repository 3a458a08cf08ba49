import { ApiErrorBody } from '@research/contracts';

/** Base of every error the client raises. */
export class ResearchError extends Error {
  override readonly name: string = 'ResearchError';
}

/**
 * The API answered with an error status. `code` and `message` come from its error body
 * (`{"error":{"code","message","details"}}`) when it sent one, else `http_<status>` and the
 * start of whatever it sent. The statuses a caller branches on have subclasses of their own.
 */
export class ApiError extends ResearchError {
  override readonly name: string = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** From `Retry-After` (429, 503), when the API sent one. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  /** The one place an HTTP error response becomes an error object. */
  static async from(res: Response): Promise<ApiError> {
    const text = await res.text().catch(() => '');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const retryAfter = retryAfterOf(res.headers.get('retry-after'));
    const parsed = ApiErrorBody.safeParse(body);
    if (parsed.success) {
      const { code, message, details } = parsed.data.error;
      return ApiError.of(res.status, code, message, details, retryAfter);
    }
    const snippet = text.trim().slice(0, 200);
    return ApiError.of(
      res.status,
      `http_${res.status}`,
      `HTTP ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''}`,
      undefined,
      retryAfter,
    );
  }

  /** The subclass for `status`, or `ApiError` itself for the others. */
  static of(status: number, code: string, message: string, details?: unknown, retryAfterSeconds?: number): ApiError {
    const Kind = BY_STATUS[status] ?? ApiError;
    return new Kind(status, code, message, details, retryAfterSeconds);
  }
}

/** 400: the request is invalid; `message` names the field. */
export class InvalidRequestError extends ApiError {
  override readonly name = 'InvalidRequestError';
}

/** 401: no key, or one the API does not know. */
export class AuthenticationError extends ApiError {
  override readonly name = 'AuthenticationError';
}

/** 404: no such task or file, or one of another tenant (the API does not tell them apart). */
export class NotFoundError extends ApiError {
  override readonly name = 'NotFoundError';
}

/** 409: the task's state forbids it (`already_finished`, deleting a running task, a reused idempotency key). */
export class ConflictError extends ApiError {
  override readonly name = 'ConflictError';
}

/** 429: a quota or rate limit; `retryAfterSeconds` says when to try again. */
export class RateLimitError extends ApiError {
  override readonly name = 'RateLimitError';
}

const BY_STATUS: Record<number, typeof ApiError> = {
  400: InvalidRequestError,
  401: AuthenticationError,
  404: NotFoundError,
  409: ConflictError,
  429: RateLimitError,
};

/** Nothing answered at the API's address (refused, unknown host, reset before a response). */
export class ConnectionError extends ResearchError {
  override readonly name = 'ConnectionError';
  constructor(
    readonly url: string,
    /** The socket error's code (`ECONNREFUSED`, `ENOTFOUND`, …) when known. */
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach ${url}${code ? ` (${code})` : ''}`, options);
  }
}

/** A request took longer than the client's timeout. */
export class TimeoutError extends ResearchError {
  override readonly name = 'TimeoutError';
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(`no answer from ${url} within ${timeoutMs} ms`);
  }
}

/** The API answered 2xx with something that is not what the contract says. */
export class ProtocolError extends ResearchError {
  override readonly name = 'ProtocolError';
}

/** Digs the socket error code out of undici's `TypeError: fetch failed` chain. */
export function socketErrorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'ERR_INVALID_ARG_TYPE') return code;
    const errors = (current as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) current = errors[0];
    else current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** `Retry-After` in seconds (the delta form; an HTTP date becomes the seconds until it). */
function retryAfterOf(header: string | null): number | undefined {
  if (header === null) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : undefined;
}
