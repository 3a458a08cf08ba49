import { SearchError } from '../errors.js';
import type { EgressResponse } from '../http.js';
import { type ApiRequest, ApiSearchProvider, ContentResults, contentHits } from './api-provider.js';
import { errorDetail, type ProviderOptions } from './provider.js';

export const TAVILY_URL = 'https://api.tavily.com';

/**
 * Tavily: `POST /search` with `Authorization: Bearer <key>` and a JSON body
 * `{query, max_results, search_depth}`; results carry `title`, `url`, `content`. Besides
 * 401 and 429 it answers 432 (plan limit) and 433 (pay-as-you-go limit), which no retry fixes.
 */
export class TavilyProvider extends ApiSearchProvider<ContentResults> {
  readonly name = 'tavily';
  protected readonly answer = { schema: ContentResults, mismatch: 'the answer has no results list' };
  readonly #apiKey: string;

  constructor(apiKey: string, options: ProviderOptions & { baseUrl?: string }) {
    super(options.baseUrl ?? TAVILY_URL, options);
    this.#apiKey = apiKey;
  }

  protected request(query: string, count: number): ApiRequest {
    return {
      url: new URL('search', this.base),
      init: {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.#apiKey}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify({ query, max_results: count, search_depth: 'basic' }),
      },
    };
  }

  protected hits(answer: ContentResults) {
    return contentHits(answer);
  }

  protected override refusal(res: EgressResponse): SearchError | undefined {
    return res.status === 432 || res.status === 433
      ? new SearchError(
          this.name,
          `the account's usage limit is reached (HTTP ${res.status}): ${errorDetail(res) ?? 'no detail'}`,
          { code: 'search_quota_exceeded', retryable: false, status: res.status },
        )
      : undefined;
  }
}
