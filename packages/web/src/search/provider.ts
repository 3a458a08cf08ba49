import type { WebSearchHit, WebSearchResult } from '@research/contracts';
import { parseHTML } from 'linkedom';
import { retryAfterMs, SearchError, WebError } from '../errors.js';
import { type EgressRequestOptions, type EgressResponse, egressRequest } from '../http.js';
import type { EgressPolicy } from '../policy.js';

export interface SearchOptions {
  /** Results wanted, 1 to 20. Default: 5. */
  maxResults?: number;
  signal?: AbortSignal;
}

/** A web search API. Errors are SearchErrors whose `code` and `retryable` say what happened. */
export interface SearchProvider {
  readonly name: 'searxng' | 'tavily' | 'brave';
  search(query: string, options?: SearchOptions): Promise<WebSearchResult>;
}

export interface ProviderOptions {
  policy: EgressPolicy;
  /** Time limit of one search. Default: 30000. */
  timeoutMs?: number;
}

export const DEFAULT_RESULTS = 5;
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** Snippets may carry markup (`<strong>` around the matched words) and entities: text only. */
export function plainText(html: string): string {
  if (!/[<&]/.test(html)) return html.replace(/\s+/g, ' ').trim();
  const { document } = parseHTML(`<!doctype html><html><body><p>${html}</p></body></html>`);
  return (document.body?.textContent ?? '').replace(/\s+/g, ' ').trim();
}

/** Keeps hits that are http(s) URLs with a title or snippet, at most `max`. */
export function cleanHits(hits: readonly WebSearchHit[], max: number): WebSearchHit[] {
  return hits
    .filter((h) => /^https?:\/\//i.test(h.url))
    .map((h) => ({ title: plainText(h.title), url: h.url, snippet: plainText(h.snippet) }))
    .slice(0, max);
}

/**
 * Sends a provider's request through the egress policy and maps its failures: 401/403 → auth
 * failed, 429 → rate limited (retryable, with Retry-After), 5xx and connection failures →
 * unavailable (retryable), other 4xx → bad request. `describe` gives the provider's own error
 * text from its body, when it has one.
 */
export async function callProvider(
  provider: string,
  options: ProviderOptions,
  url: string,
  request: EgressRequestOptions,
  special: (res: EgressResponse) => SearchError | undefined = () => undefined,
): Promise<unknown> {
  let res: EgressResponse;
  try {
    res = await egressRequest(options.policy, url, {
      ...request,
      timeoutMs: options.timeoutMs ?? 30_000,
      maxBytes: MAX_ANSWER_BYTES,
      maxRedirects: 0,
    });
  } catch (err) {
    if (err instanceof WebError && err.code === 'egress_denied') throw err;
    const retryable = !(err instanceof WebError) || err.retryable;
    throw new SearchError(provider, `the search API could not be reached: ${(err as Error).message}`, {
      code: 'search_unavailable',
      retryable,
      cause: err,
    });
  }
  const known = special(res);
  if (known) throw known;
  const status = res.status;
  if (status >= 200 && status < 300) {
    try {
      return JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new SearchError(provider, `the search API answered HTTP ${status} with a body that is not JSON`, {
        code: 'search_bad_response',
        retryable: false,
        status,
      });
    }
  }
  const detail = errorDetail(res);
  const said = detail ? `: ${detail}` : '';
  if (status === 401 || status === 403)
    throw new SearchError(
      provider,
      `the search API refused the key (HTTP ${status})${said}; check WEB_SEARCH_API_KEY`,
      {
        code: 'search_auth_failed',
        retryable: false,
        status,
      },
    );
  if (status === 429) {
    const wait = retryAfterMs(res.headers['retry-after']);
    throw new SearchError(
      provider,
      `rate limited (HTTP 429)${wait !== undefined ? `; retry after ${wait} ms` : ''}${said}`,
      {
        code: 'search_rate_limited',
        retryable: true,
        status,
        ...(wait !== undefined ? { retryAfterMs: wait } : {}),
      },
    );
  }
  if (status >= 500)
    throw new SearchError(provider, `the search API failed (HTTP ${status})${said}`, {
      code: 'search_unavailable',
      retryable: true,
      status,
    });
  throw new SearchError(provider, `the search API refused the request (HTTP ${status})${said}`, {
    code: 'search_bad_request',
    retryable: false,
    status,
  });
}

/** The error text of a provider's JSON error body (`{"detail":{"error":…}}`, `{"error":{"detail":…}}`, `{"message":…}`). */
export function errorDetail(res: EgressResponse): string | undefined {
  try {
    const body = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
    const pick = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
    const nested = (v: unknown, ...keys: string[]): string | undefined =>
      typeof v === 'object' && v !== null
        ? keys.map((k) => pick((v as Record<string, unknown>)[k])).find((s) => s !== undefined)
        : pick(v);
    const text =
      nested(body.detail, 'error', 'message') ?? nested(body.error, 'detail', 'message') ?? pick(body.message);
    return text?.slice(0, 300);
  } catch {
    const text = res.body.toString('utf8').replace(/\s+/g, ' ').trim();
    return text ? text.slice(0, 200) : undefined;
  }
}

/** `count` within 1..20, `DEFAULT_RESULTS` when not given. */
export function resultCount(options: SearchOptions | undefined): number {
  return Math.min(20, Math.max(1, Math.floor(options?.maxResults ?? DEFAULT_RESULTS)));
}
