import { z } from 'zod';
import type { WebSearchResult } from '@research/contracts';
import { SearchError } from '../errors.js';
import {
  callProvider,
  cleanHits,
  type ProviderOptions,
  resultCount,
  type SearchOptions,
  type SearchProvider,
} from './provider.js';

/** The part of SearXNG's `format=json` answer used here. */
const SearxngAnswer = z.object({
  results: z.array(z.object({ url: z.string(), title: z.string().default(''), content: z.string().nullish() }).loose()),
});

/**
 * A self-hosted SearXNG: `GET <WEB_SEARCH_URL>/search?q=…&format=json`. The instance must have
 * `json` among `search.formats` in its settings.yml; without it SearXNG answers 403, which is
 * reported as such. SearXNG takes no result count; the first results are kept.
 */
export class SearxngProvider implements SearchProvider {
  readonly name = 'searxng';
  readonly #base: URL;
  readonly #options: ProviderOptions;

  constructor(baseUrl: string, options: ProviderOptions) {
    this.#base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    this.#options = options;
  }

  async search(query: string, options?: SearchOptions): Promise<WebSearchResult> {
    const url = new URL('search', this.#base);
    url.searchParams.set('q', query);
    url.searchParams.set('format', 'json');
    const body = await callProvider(
      this.name,
      this.#options,
      url.href,
      { headers: { accept: 'application/json' }, ...(options?.signal ? { signal: options.signal } : {}) },
      (res) =>
        res.status === 403
          ? new SearchError(
              this.name,
              'the instance refuses format=json (HTTP 403): add json to search.formats in its settings.yml',
              {
                code: 'search_auth_failed',
                retryable: false,
                status: 403,
              },
            )
          : undefined,
    );
    const parsed = SearxngAnswer.safeParse(body);
    if (!parsed.success)
      throw new SearchError(this.name, 'the answer has no results list (is WEB_SEARCH_URL a SearXNG instance?)', {
        code: 'search_bad_response',
        retryable: false,
      });
    const hits = parsed.data.results.map((r) => ({ title: r.title, url: r.url, snippet: r.content ?? '' }));
    return { action: 'web-search', query, provider: this.name, results: cleanHits(hits, resultCount(options)) };
  }
}
