import { z } from 'zod';
import { SearchError } from '../errors.js';
import type { EgressResponse } from '../http.js';
import { type ApiRequest, ApiSearchProvider } from './api-provider.js';
import { errorDetail, type ProviderOptions } from './provider.js';

export const BRAVE_URL = 'https://api.search.brave.com';

const BraveAnswer = z.object({
  web: z
    .object({
      results: z.array(
        z.object({ url: z.string(), title: z.string().default(''), description: z.string().nullish() }).loose(),
      ),
    })
    .optional(),
});

type BraveAnswer = z.infer<typeof BraveAnswer>;

/**
 * The seconds until the window that ran out resets. Brave sends one value per window
 * (`X-RateLimit-Remaining: 0, 9000` with `X-RateLimit-Reset: 1, 1419704`: per second, per month).
 */
function rateLimitResetMs(res: EgressResponse): number | undefined {
  const resets = (res.headers['x-ratelimit-reset'] ?? '').split(',').map((s) => Number(s.trim()));
  const remaining = (res.headers['x-ratelimit-remaining'] ?? '').split(',').map((s) => Number(s.trim()));
  const spent = remaining.indexOf(0);
  const seconds = resets[Math.max(spent, 0)];
  return seconds !== undefined && Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

/**
 * Brave Search: `GET /res/v1/web/search?q=…&count=…` with `X-Subscription-Token: <key>`;
 * results are `web.results[]` with `title`, `url` and an HTML-marked `description`. An
 * invalid token is answered 401 or 422 (`SUBSCRIPTION_TOKEN_INVALID`); a rate limit 429 with
 * the window in `X-RateLimit-Reset`.
 */
export class BraveProvider extends ApiSearchProvider<BraveAnswer> {
  readonly name = 'brave';
  protected readonly answer = { schema: BraveAnswer, mismatch: 'the answer is not a web search response' };
  readonly #apiKey: string;

  constructor(apiKey: string, options: ProviderOptions & { baseUrl?: string }) {
    super(options.baseUrl ?? BRAVE_URL, options);
    this.#apiKey = apiKey;
  }

  protected request(query: string, count: number): ApiRequest {
    const url = new URL('res/v1/web/search', this.base);
    url.searchParams.set('q', query);
    url.searchParams.set('count', String(count));
    return { url, init: { headers: { 'x-subscription-token': this.#apiKey, accept: 'application/json' } } };
  }

  protected hits(answer: BraveAnswer) {
    return (answer.web?.results ?? []).map((r) => ({ title: r.title, url: r.url, snippet: r.description ?? '' }));
  }

  protected override refusal(res: EgressResponse): SearchError | undefined {
    const detail = errorDetail(res);
    if (res.status === 422 && /token/i.test(res.body.toString('utf8')))
      return new SearchError(
        this.name,
        `the search API refused the key (HTTP 422): ${detail ?? 'invalid token'}; check WEB_SEARCH_API_KEY`,
        { code: 'search_auth_failed', retryable: false, status: 422 },
      );
    if (res.status === 429 && res.headers['retry-after'] === undefined) {
      const wait = rateLimitResetMs(res);
      return new SearchError(
        this.name,
        `rate limited (HTTP 429)${wait !== undefined ? `; retry after ${wait} ms` : ''}${detail ? `: ${detail}` : ''}`,
        {
          code: 'search_rate_limited',
          retryable: true,
          status: 429,
          ...(wait !== undefined ? { retryAfterMs: wait } : {}),
        },
      );
    }
    return undefined;
  }
}
