import type { Env } from '@research/config';
import type { EgressPolicy } from '../policy.js';
import { BraveProvider } from './brave.js';
import type { SearchProvider } from './provider.js';
import { SearxngProvider } from './searxng.js';
import { TavilyProvider } from './tavily.js';

export type SearchEnv = Pick<
  Env,
  'WEB_SEARCH_PROVIDER' | 'WEB_SEARCH_URL' | 'WEB_SEARCH_API_KEY' | 'WEB_FETCH_TIMEOUT_MS'
>;

/**
 * What a configuration lacks for its provider, in the shape of @research/config's Requirement,
 * so a worker can stop at start naming the variable: `loadConfigOrExit('worker', [requireWebSearch])`.
 */
export function requireWebSearch(env: SearchEnv): { variable: string; message: string } | undefined {
  if (env.WEB_SEARCH_PROVIDER === 'searxng' && !env.WEB_SEARCH_URL)
    return { variable: 'WEB_SEARCH_URL', message: 'WEB_SEARCH_PROVIDER=searxng needs the URL of the SearXNG instance' };
  if ((env.WEB_SEARCH_PROVIDER === 'tavily' || env.WEB_SEARCH_PROVIDER === 'brave') && !env.WEB_SEARCH_API_KEY)
    return {
      variable: 'WEB_SEARCH_API_KEY',
      message: `WEB_SEARCH_PROVIDER=${env.WEB_SEARCH_PROVIDER} needs an API key`,
    };
  return undefined;
}

/**
 * The provider WEB_SEARCH_PROVIDER selects, sending through `policy`; undefined for `none`
 * (then the web tools are not offered at all). Throws for a configuration `requireWebSearch`
 * refuses. A self-hosted SearXNG on a private address is reached only with an
 * EGRESS_ALLOW_HOSTS entry for it (e.g. `searxng:8080`): the policy makes no exception.
 */
export function createSearchProvider(env: SearchEnv, policy: EgressPolicy): SearchProvider | undefined {
  const missing = requireWebSearch(env);
  if (missing) throw new Error(`${missing.variable}: ${missing.message}`);
  const options = { policy, timeoutMs: env.WEB_FETCH_TIMEOUT_MS };
  const baseUrl = env.WEB_SEARCH_URL ? { baseUrl: env.WEB_SEARCH_URL } : {};
  switch (env.WEB_SEARCH_PROVIDER) {
    case 'none':
      return undefined;
    case 'searxng':
      return new SearxngProvider(env.WEB_SEARCH_URL as string, options);
    case 'tavily':
      return new TavilyProvider(env.WEB_SEARCH_API_KEY as string, { ...options, ...baseUrl });
    case 'brave':
      return new BraveProvider(env.WEB_SEARCH_API_KEY as string, { ...options, ...baseUrl });
  }
}
