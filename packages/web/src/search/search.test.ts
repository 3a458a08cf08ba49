import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressDeniedError, SearchError } from '../errors.js';
import { EgressPolicy } from '../policy.js';
import { startServer, type TestServer } from '@research/testing/servers';
import { BraveProvider } from './brave.js';
import { createSearchProvider, requireWebSearch } from './create.js';
import type { SearchProvider } from './provider.js';
import { SearxngProvider } from './searxng.js';
import { TavilyProvider } from './tavily.js';

/**
 * Each provider against a loopback server that speaks its documented API: the request it must
 * send, the answer it gets, and the error and rate-limit answers. TEST DATA throughout.
 */

const HITS = [
  {
    title: 'Euro area inflation <em>falls</em>',
    url: 'https://stats.example.org/cpi',
    text: 'Annual inflation &amp; core rates, <b>2.4%</b>',
  },
  { title: 'CPI data', url: 'https://data.example.org/cpi.csv', text: 'Monthly series' },
  { title: 'A tracker', url: 'javascript:alert(1)', text: 'not a page' },
  { title: 'Outlook', url: 'http://news.example.net/outlook', text: '' },
];

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** Behaviour picked by the query, so one server shows every answer. */
function scenario(query: string | null): string {
  return query?.startsWith('case:') ? query.slice(5) : 'ok';
}

function searxng(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname !== '/search' || url.searchParams.get('format') !== 'json') return json(res, 404, { error: 'no' });
  switch (scenario(url.searchParams.get('q'))) {
    case 'json-off':
      return void res.writeHead(403, { 'content-type': 'text/html' }).end('<h1>403 Forbidden</h1>');
    case 'limiter':
      return void res.writeHead(429, { 'retry-after': '30', 'content-type': 'text/plain' }).end('Too Many Requests');
    case 'broken':
      return void res.writeHead(502).end('Bad Gateway');
    case 'not-json':
      return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>search page</html>');
    case 'wrong-shape':
      return json(res, 200, { hello: 'world' });
  }
  json(res, 200, {
    query: url.searchParams.get('q'),
    number_of_results: 0,
    results: HITS.map((h, i) => ({
      url: h.url,
      title: h.title,
      content: h.text,
      engine: 'duckduckgo',
      parsed_url: ['https', 'stats.example.org', '/cpi', '', '', ''],
      template: 'default.html',
      engines: ['duckduckgo'],
      positions: [i + 1],
      score: 1 / (i + 1),
      category: 'general',
    })),
    answers: [],
    corrections: [],
    infoboxes: [],
    suggestions: [],
    unresponsive_engines: [],
  });
}

function tavily(req: IncomingMessage, res: ServerResponse, body: string) {
  if (req.method !== 'POST' || req.url !== '/search') return json(res, 404, { detail: { error: 'Not Found' } });
  if (req.headers.authorization !== 'Bearer tvly-test-key')
    return json(res, 401, { detail: { error: 'Unauthorized: missing or invalid API key.' } });
  const request = JSON.parse(body) as { query: string; max_results: number };
  switch (scenario(request.query)) {
    case 'rate':
      return json(
        res,
        429,
        { detail: { error: 'Your request has been blocked due to excessive requests.' } },
        { 'retry-after': '12' },
      );
    case 'plan':
      return json(res, 432, { detail: { error: "This request exceeds your plan's set usage limit." } });
    case 'bad':
      return json(res, 400, { detail: { error: 'Query is too long. Max query length is 400 characters.' } });
    case 'down':
      return json(res, 500, { detail: { error: 'Internal Server Error' } });
  }
  json(res, 200, {
    query: request.query,
    follow_up_questions: null,
    answer: null,
    images: [],
    results: HITS.slice(0, request.max_results).map((h, i) => ({
      title: h.title,
      url: h.url,
      content: h.text,
      score: 0.9 - i / 10,
      raw_content: null,
    })),
    response_time: 0.42,
  });
}

function brave(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method !== 'GET' || url.pathname !== '/res/v1/web/search') return json(res, 404, {});
  const error = (status: number, code: string, detail: string, headers: Record<string, string> = {}): void =>
    json(res, status, { type: 'ErrorResponse', error: { id: 'e1', status, code, detail, meta: {} }, time: 1 }, headers);
  if (req.headers['x-subscription-token'] !== 'BSA-test-key')
    return error(422, 'SUBSCRIPTION_TOKEN_INVALID', 'The provided subscription token is invalid.');
  switch (scenario(url.searchParams.get('q'))) {
    case 'rate':
      return error(429, 'RATE_LIMITED', 'Request rate limit exceeded for plan.', {
        'x-ratelimit-limit': '1, 2000',
        'x-ratelimit-remaining': '0, 1500',
        'x-ratelimit-reset': '1, 1419704',
      });
    case 'monthly':
      return error(429, 'QUOTA_LIMITED', 'Request quota limit exceeded for plan.', {
        'x-ratelimit-remaining': '1, 0',
        'x-ratelimit-reset': '1, 86400',
      });
    case 'revoked':
      return error(401, 'UNAUTHORIZED', 'Not authorized.');
  }
  const count = Number(url.searchParams.get('count'));
  json(res, 200, {
    type: 'search',
    query: { original: url.searchParams.get('q'), more_results_available: true },
    mixed: { type: 'mixed', main: [] },
    web: {
      type: 'search',
      results: HITS.slice(0, count).map((h) => ({
        title: h.title,
        url: h.url,
        description: h.text,
        is_source_local: false,
        language: 'en',
        family_friendly: true,
        type: 'search_result',
        subtype: 'generic',
        meta_url: { scheme: 'https', hostname: 'stats.example.org' },
      })),
      family_friendly: true,
    },
  });
}

const servers: Record<'searxng' | 'tavily' | 'brave', TestServer> = {} as never;
beforeAll(async () => {
  servers.searxng = await startServer((req, res) => searxng(req, res));
  servers.tavily = await startServer((req, res, body) => tavily(req, res, body));
  servers.brave = await startServer((req, res) => brave(req, res));
});
afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

const policy = (): EgressPolicy =>
  new EgressPolicy({ allow: Object.values(servers).map((s) => `127.0.0.1:${s.port}`) });

async function failure(provider: SearchProvider, query: string): Promise<SearchError> {
  const err = await provider.search(query).catch((e: unknown) => e);
  if (!(err instanceof SearchError)) throw new Error(`expected a SearchError, got ${String(err)}`);
  return err;
}

const EXPECTED = [
  {
    title: 'Euro area inflation falls',
    url: 'https://stats.example.org/cpi',
    snippet: 'Annual inflation & core rates, 2.4%',
  },
  { title: 'CPI data', url: 'https://data.example.org/cpi.csv', snippet: 'Monthly series' },
  { title: 'Outlook', url: 'http://news.example.net/outlook', snippet: '' },
];

/** What every provider answers for 'euro area inflation' from its server's hits. */
const answered = (provider: SearchProvider['name']) => ({
  action: 'web-search',
  query: 'euro area inflation',
  provider,
  results: EXPECTED,
});

describe('searxng', () => {
  const provider = (): SearchProvider => new SearxngProvider(servers.searxng.origin, { policy: policy() });

  it('asks GET /search?q=…&format=json and keeps the first http(s) results as plain text', async () => {
    const result = await provider().search('euro area inflation', { maxResults: 3 });
    expect(result).toEqual(answered('searxng'));
    const sent = new URL(servers.searxng.requests.at(-1)?.url ?? '', 'http://x');
    expect(sent.pathname).toBe('/search');
    expect(Object.fromEntries(sent.searchParams)).toEqual({ q: 'euro area inflation', format: 'json' });
  });

  it('explains a 403 (json format off), maps 429 with Retry-After, 5xx and answers that are not SearXNG', async () => {
    const off = await failure(provider(), 'case:json-off');
    expect(off).toMatchObject({ code: 'search_auth_failed', retryable: false, status: 403 });
    expect(off.message).toMatch(/add json to search\.formats in its settings\.yml/);
    expect(await failure(provider(), 'case:limiter')).toMatchObject({
      code: 'search_rate_limited',
      retryable: true,
      retryAfterMs: 30_000,
    });
    expect(await failure(provider(), 'case:broken')).toMatchObject({
      code: 'search_unavailable',
      retryable: true,
      status: 502,
    });
    expect(await failure(provider(), 'case:not-json')).toMatchObject({ code: 'search_bad_response', retryable: false });
    expect(await failure(provider(), 'case:wrong-shape')).toMatchObject({ code: 'search_bad_response' });
  });

  it('goes through the egress policy: without an allow entry the instance is not even contacted', async () => {
    const before = servers.searxng.requests.length;
    const closed = new SearxngProvider(servers.searxng.origin, { policy: new EgressPolicy() });
    const err = await closed.search('anything').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressDeniedError);
    expect(err).toMatchObject({ code: 'egress_denied', rule: 'port' });
    expect(servers.searxng.requests.length).toBe(before);
  });
});

describe('tavily', () => {
  const provider = (key = 'tvly-test-key'): SearchProvider =>
    new TavilyProvider(key, { policy: policy(), baseUrl: servers.tavily.origin });

  it('POSTs /search with the bearer key and {query, max_results}', async () => {
    const result = await provider().search('euro area inflation', { maxResults: 4 });
    expect(result).toEqual(answered('tavily'));
    const sent = servers.tavily.requests.at(-1);
    expect(sent?.headers.authorization).toBe('Bearer tvly-test-key');
    expect(sent?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(sent?.body ?? '{}')).toEqual({
      query: 'euro area inflation',
      max_results: 4,
      search_depth: 'basic',
    });
  });

  it('maps 401, 429 with Retry-After, 432, 400 and 500 to clear errors, with Tavily’s own detail', async () => {
    const auth = await failure(provider('wrong'), 'x');
    expect(auth).toMatchObject({ code: 'search_auth_failed', retryable: false, status: 401 });
    expect(auth.message).toBe(
      'tavily: the search API refused the key (HTTP 401): Unauthorized: missing or invalid API key.; check WEB_SEARCH_API_KEY',
    );
    expect(await failure(provider(), 'case:rate')).toMatchObject({
      code: 'search_rate_limited',
      retryable: true,
      retryAfterMs: 12_000,
    });
    const plan = await failure(provider(), 'case:plan');
    expect(plan).toMatchObject({ code: 'search_quota_exceeded', retryable: false, status: 432 });
    expect(plan.message).toMatch(/usage limit/);
    const bad = await failure(provider(), 'case:bad');
    expect(bad).toMatchObject({ code: 'search_bad_request', retryable: false, status: 400 });
    expect(bad.message).toMatch(/Max query length is 400 characters/);
    expect(await failure(provider(), 'case:down')).toMatchObject({ code: 'search_unavailable', retryable: true });
  });
});

describe('brave', () => {
  const provider = (key = 'BSA-test-key'): SearchProvider =>
    new BraveProvider(key, { policy: policy(), baseUrl: servers.brave.origin });

  it('GETs /res/v1/web/search?q=…&count=… with X-Subscription-Token, and strips the description markup', async () => {
    const result = await provider().search('euro area inflation', { maxResults: 4 });
    expect(result).toEqual(answered('brave'));
    const sent = servers.brave.requests.at(-1);
    expect(sent?.headers['x-subscription-token']).toBe('BSA-test-key');
    expect(Object.fromEntries(new URL(sent?.url ?? '', 'http://x').searchParams)).toEqual({
      q: 'euro area inflation',
      count: '4',
    });
    // Five by default.
    await provider().search('default count');
    expect(new URL(servers.brave.requests.at(-1)?.url ?? '', 'http://x').searchParams.get('count')).toBe('5');
  });

  it('maps an invalid token (422 or 401), and a 429 to the window that ran out', async () => {
    const invalid = await failure(provider('nope'), 'x');
    expect(invalid).toMatchObject({ code: 'search_auth_failed', retryable: false, status: 422 });
    expect(invalid.message).toMatch(/The provided subscription token is invalid\..*WEB_SEARCH_API_KEY/);
    expect(await failure(provider(), 'case:revoked')).toMatchObject({ code: 'search_auth_failed', status: 401 });
    const perSecond = await failure(provider(), 'case:rate');
    expect(perSecond).toMatchObject({ code: 'search_rate_limited', retryable: true, retryAfterMs: 1000 });
    expect(perSecond.message).toMatch(/Request rate limit exceeded for plan\./);
    expect(await failure(provider(), 'case:monthly')).toMatchObject({ retryAfterMs: 86_400_000 });
  });
});

describe('createSearchProvider', () => {
  const base = { WEB_SEARCH_URL: undefined, WEB_SEARCH_API_KEY: undefined, WEB_FETCH_TIMEOUT_MS: 5000 };

  it('offers none by default, and builds the configured one', async () => {
    expect(createSearchProvider({ ...base, WEB_SEARCH_PROVIDER: 'none' }, policy())).toBeUndefined();
    const s = createSearchProvider(
      { ...base, WEB_SEARCH_PROVIDER: 'searxng', WEB_SEARCH_URL: servers.searxng.origin },
      policy(),
    );
    expect((await s?.search('from env'))?.results).toHaveLength(3);
    const t = createSearchProvider(
      {
        ...base,
        WEB_SEARCH_PROVIDER: 'tavily',
        WEB_SEARCH_URL: servers.tavily.origin,
        WEB_SEARCH_API_KEY: 'tvly-test-key',
      },
      policy(),
    );
    expect((await t?.search('from env'))?.provider).toBe('tavily');
  });

  it('names the variable a provider needs', () => {
    expect(requireWebSearch({ ...base, WEB_SEARCH_PROVIDER: 'searxng' })).toEqual({
      variable: 'WEB_SEARCH_URL',
      message: 'WEB_SEARCH_PROVIDER=searxng needs the URL of the SearXNG instance',
    });
    expect(requireWebSearch({ ...base, WEB_SEARCH_PROVIDER: 'brave' })?.variable).toBe('WEB_SEARCH_API_KEY');
    expect(requireWebSearch({ ...base, WEB_SEARCH_PROVIDER: 'none' })).toBeUndefined();
    expect(() => createSearchProvider({ ...base, WEB_SEARCH_PROVIDER: 'tavily' }, policy())).toThrow(
      /WEB_SEARCH_API_KEY/,
    );
  });
});
