/**
 * Errors of outbound requests. Each carries a `code` the model (or a webhook's record) sees and
 * `retryable`: whether trying again later can succeed. A refusal by the egress policy is never
 * retryable; a timeout, a 5xx or a rate limit is. The worker turns a non-retryable error into
 * the step's outcome and lets a retryable one fail the step job, which BullMQ retries.
 */
export class WebError extends Error {
  override readonly name: string = 'WebError';
  readonly code: string;
  readonly retryable: boolean;
  /** How long the other side asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: { code: string; retryable: boolean; retryAfterMs?: number; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The rule of the egress policy that refused a destination:
 * - `scheme`: not http or https;
 * - `credentials`: user or password in the URL;
 * - `host-name`: a name that always means this machine (`localhost`, `*.localhost`);
 * - `deny-list`: EGRESS_DENY_HOSTS matched;
 * - `port`: not 80 or 443, and no EGRESS_ALLOW_HOSTS entry names this host with this port;
 * - `address`: the host is, or resolves to, an address of a refused range (`range` says which);
 * - `fetch-budget`, `byte-budget`: the task used up WEB_MAX_FETCHES_PER_TASK or WEB_MAX_BYTES_PER_TASK.
 */
export type EgressRule =
  | 'scheme'
  | 'credentials'
  | 'host-name'
  | 'deny-list'
  | 'port'
  | 'address'
  | 'fetch-budget'
  | 'byte-budget';

/** A destination the egress policy refuses. No connection was opened. */
export class EgressDeniedError extends WebError {
  override readonly name = 'EgressDeniedError';
  readonly rule: EgressRule;
  /** For rule `address`: the range the address belongs to (`loopback`, `private`, `ipv4Mapped(loopback)`…). */
  readonly range: string | undefined;
  readonly url: string;

  constructor(url: string, rule: EgressRule, message: string, range?: string) {
    super(`egress denied (${rule}${range ? `: ${range}` : ''}): ${message}`, {
      code: 'egress_denied',
      retryable: false,
    });
    this.rule = rule;
    this.range = range;
    this.url = url;
  }
}

/** The request, its redirects included, did not finish within its time limit. */
export class WebTimeoutError extends WebError {
  override readonly name = 'WebTimeoutError';
  constructor(url: string, timeoutMs: number) {
    super(`${url} did not answer within ${timeoutMs} ms`, { code: 'fetch_timeout', retryable: true });
  }
}

/** A page answered with a status that is not a success (after redirects). */
export class HttpStatusError extends WebError {
  override readonly name = 'HttpStatusError';
  readonly status: number;
  constructor(url: string, status: number, retryAfterMs?: number) {
    const retryable = status === 408 || status === 425 || status === 429 || status >= 500;
    super(`${url} answered HTTP ${status}`, {
      code: 'http_error',
      retryable,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
    this.status = status;
  }
}

/** The page is of a type fetch does not turn into text (images, archives, executables…). */
export class UnsupportedContentError extends WebError {
  override readonly name = 'UnsupportedContentError';
  readonly contentType: string;
  constructor(url: string, contentType: string) {
    super(`${url} is ${contentType || 'of no stated type'}; web-fetch keeps HTML, text, CSV, JSON and PDF only`, {
      code: 'unsupported_content_type',
      retryable: false,
    });
    this.contentType = contentType;
  }
}

/** A search provider failed; `code` says how (auth, rate limit, quota, unavailable, bad answer). */
export class SearchError extends WebError {
  override readonly name = 'SearchError';
  readonly provider: string;
  readonly status: number | undefined;
  constructor(
    provider: string,
    message: string,
    options: { code: SearchErrorCode; retryable: boolean; status?: number; retryAfterMs?: number; cause?: unknown },
  ) {
    super(`${provider}: ${message}`, options);
    this.provider = provider;
    this.status = options.status;
  }
}

export type SearchErrorCode =
  | 'search_auth_failed'
  | 'search_rate_limited'
  | 'search_quota_exceeded'
  | 'search_bad_request'
  | 'search_unavailable'
  | 'search_bad_response';

/** Reads a Retry-After header (seconds or an HTTP date) as milliseconds from now. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
