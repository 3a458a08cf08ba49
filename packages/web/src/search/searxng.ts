import { SearchError } from '../errors.js';
import type { EgressResponse } from '../http.js';
import { type ApiRequest, ApiSearchProvider, ContentResults, contentHits } from './api-provider.js';

/**
 * A self-hosted SearXNG: `GET <WEB_SEARCH_URL>/search?q=…&format=json`. The instance must have
 * `json` among `search.formats` in its settings.yml; without it SearXNG answers 403, which is
 * reported as such. SearXNG takes no result count; the first results are kept.
 */
export class SearxngProvider extends ApiSearchProvider<ContentResults> {
  readonly name = 'searxng';
  protected readonly answer = {
    schema: ContentResults,
    mismatch: 'the answer has no results list (is WEB_SEARCH_URL a SearXNG instance?)',
  };

  protected hits(answer: ContentResults) {
    return contentHits(answer);
  }

  protected request(query: string): ApiRequest {
    const url = new URL('search', this.base);
    url.searchParams.set('q', query);
    url.searchParams.set('format', 'json');
    return { url, init: { headers: { accept: 'application/json' } } };
  }

  protected override refusal(res: EgressResponse): SearchError | undefined {
    return res.status === 403
      ? new SearchError(
          this.name,
          'the instance refuses format=json (HTTP 403): add json to search.formats in its settings.yml',
          { code: 'search_auth_failed', retryable: false, status: 403 },
        )
      : undefined;
  }
}
