import { describe, expect, it } from 'vitest';
import { loadEnv } from './config.js';

describe('the web access variables', () => {
  it('default to no web tools and the documented caps', () => {
    const env = loadEnv({});
    expect(env.WEB_SEARCH_PROVIDER).toBe('none');
    expect(env.WEB_FETCH_MAX_BYTES).toBe(2 * 1024 * 1024);
    expect(env.WEB_MAX_FETCHES_PER_TASK).toBe(20);
    expect(env.EGRESS_ALLOW_HOSTS).toEqual([]);
  });

  it('read host lists as comma-separated entries', () => {
    const env = loadEnv({ EGRESS_ALLOW_HOSTS: ' searxng:8080, 10.0.0.0/8 ,,', EGRESS_DENY_HOSTS: '*.internal' });
    expect(env.EGRESS_ALLOW_HOSTS).toEqual(['searxng:8080', '10.0.0.0/8']);
    expect(env.EGRESS_DENY_HOSTS).toEqual(['*.internal']);
  });

  it('refuse an unknown provider, a search URL that is not http(s) and a tiny fetch cap, naming each', () => {
    expect(() => loadEnv({ WEB_SEARCH_PROVIDER: 'bing' })).toThrow(/WEB_SEARCH_PROVIDER: .*"none"/);
    expect(() => loadEnv({ WEB_SEARCH_URL: 'file:///etc/passwd' })).toThrow(/WEB_SEARCH_URL/);
    expect(() => loadEnv({ WEB_FETCH_MAX_BYTES: '10' })).toThrow(/WEB_FETCH_MAX_BYTES/);
  });
});
