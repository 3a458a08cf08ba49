import { ApiErrorBody } from '@research/contracts';

/** Base of every error the client raises. */
export class ResearchError extends Error {
  override readonly name: string = 'ResearchError';
}

/** The API answered with an error status; `code` and `message` come from its error body when it sent one. */
export class ApiError extends ResearchError {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
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
    const parsed = ApiErrorBody.safeParse(body);
    if (parsed.success)
      return new ApiError(res.status, parsed.data.error.code, parsed.data.error.message, parsed.data.error.details);
    const snippet = text.trim().slice(0, 200);
    return new ApiError(
      res.status,
      `http_${res.status}`,
      `HTTP ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''}`,
    );
  }
}

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
