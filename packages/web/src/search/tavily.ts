import { z } from 'zod';
import type { WebSearchResult } from '@research/contracts';
import { SearchError } from '../errors.js';
import {
  callProvider,
  cleanHits,
  errorDetail,
  type ProviderOptions,
  resultCount,
  type SearchOptions,
  type SearchProvider,
} from './provider.js';

export const TAVILY_URL = 'https://api.tavily.com';

const TavilyAnswer = z.object({
  results: z.array(z.object({ url: z.string(), title: z.string().default(''), content: z.string().nullish() }).loose()),
});

/**
 * Tavily: `POST /search` with `Authorization: Bearer <key>` and a JSON body
 * `{query, max_results, search_depth}`; results carry `title`, `url`, `content`. Besides
 * 401 and 429 it answers 432 (plan limit) and 433 (pay-as-you-go limit), which no retry fixes.
 */
export class TavilyProvider implements SearchProvider {
  readonly name = 'tavily';
  readonly #base: URL;
  readonly #apiKey: string;
  readonly #options: ProviderOptions;

  constructor(apiKey: string, options: ProviderOptions & { baseUrl?: string }) {
    const base = options.baseUrl ?? TAVILY_URL;
    this.#base = new URL(base.endsWith('/') ? base : `${base}/`);
    this.#apiKey = apiKey;
    this.#options = options;
  }

  async search(query: string, options?: SearchOptions): Promise<WebSearchResult> {
    const body = await callProvider(
      this.name,
      this.#options,
      new URL('search', this.#base).href,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.#apiKey}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify({ query, max_results: resultCount(options), search_depth: 'basic' }),
        ...(options?.signal ? { signal: options.signal } : {}),
      },
      (res) =>
        res.status === 432 || res.status === 433
          ? new SearchError(
              this.name,
              `the account's usage limit is reached (HTTP ${res.status}): ${errorDetail(res) ?? 'no detail'}`,
              {
                code: 'search_quota_exceeded',
                retryable: false,
                status: res.status,
              },
            )
          : undefined,
    );
    const parsed = TavilyAnswer.safeParse(body);
    if (!parsed.success)
      throw new SearchError(this.name, 'the answer has no results list', {
        code: 'search_bad_response',
        retryable: false,
      });
    const hits = parsed.data.results.map((r) => ({ title: r.title, url: r.url, snippet: r.content ?? '' }));
    return { action: 'web-search', query, provider: this.name, results: cleanHits(hits, resultCount(options)) };
  }
}
