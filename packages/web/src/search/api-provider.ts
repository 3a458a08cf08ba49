import type { WebSearchHit, WebSearchResult } from '@research/contracts';
import { z } from 'zod';
import { SearchError } from '../errors.js';
import type { EgressRequestOptions, EgressResponse } from '../http.js';
import {
  callProvider,
  cleanHits,
  type ProviderOptions,
  resultCount,
  type SearchOptions,
  type SearchProvider,
} from './provider.js';

/** `results[]` with `title`, `url` and `content`: the answer of Tavily and of SearXNG's `format=json`. */
export const ContentResults = z.object({
  results: z.array(z.object({ url: z.string(), title: z.string().default(''), content: z.string().nullish() }).loose()),
});
export type ContentResults = z.infer<typeof ContentResults>;

/** The hits of a {@link ContentResults} answer, `content` as the snippet. */
export function contentHits(answer: ContentResults): WebSearchHit[] {
  return answer.results.map((r) => ({ title: r.title, url: r.url, snippet: r.content ?? '' }));
}

/** One request to a search API; the signal of the search is added to `init`. */
export interface ApiRequest {
  url: URL;
  init: EgressRequestOptions;
}

/**
 * A search API over HTTP. What differs between them is the request, the failures an API reports
 * its own way, and where its answer holds the hits; the sending (through the egress policy), the
 * common failures and the cleaning of the hits are `callProvider`'s and `cleanHits`'.
 */
export abstract class ApiSearchProvider<Answer> implements SearchProvider {
  abstract readonly name: SearchProvider['name'];
  /** The API's base URL, ending in `/` so that relative paths resolve below it. */
  protected readonly base: URL;
  readonly #options: ProviderOptions;

  constructor(baseUrl: string, options: ProviderOptions) {
    this.base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    this.#options = options;
  }

  /** The request for `count` results of `query`. */
  protected abstract request(query: string, count: number): ApiRequest;

  /** The schema of a good answer, and what to say of a body that does not fit it. */
  protected abstract readonly answer: { schema: z.ZodType<Answer>; mismatch: string };

  protected abstract hits(answer: Answer): WebSearchHit[];

  /** A failure the API reports its own way, before `callProvider`'s mapping by status. Default: none. */
  protected refusal(_res: EgressResponse): SearchError | undefined {
    return undefined;
  }

  async search(query: string, options?: SearchOptions): Promise<WebSearchResult> {
    const count = resultCount(options);
    const { url, init } = this.request(query, count);
    const body = await callProvider(
      this.name,
      this.#options,
      url.href,
      { ...init, ...(options?.signal ? { signal: options.signal } : {}) },
      (res) => this.refusal(res),
    );
    const parsed = this.answer.schema.safeParse(body);
    if (!parsed.success)
      throw new SearchError(this.name, this.answer.mismatch, { code: 'search_bad_response', retryable: false });
    return { action: 'web-search', query, provider: this.name, results: cleanHits(this.hits(parsed.data), count) };
  }
}
