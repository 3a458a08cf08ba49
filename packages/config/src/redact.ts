/** What a credential is replaced with, in URLs, log lines and error messages. */
export const REDACTED = '[redacted]';

/** `scheme://userinfo@`: the userinfo of any URL (Redis, an LLM endpoint, a webhook) holds credentials. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]{0,30}:\/\/)([^\s/?#@"'\\]+)@/gi;

/**
 * The URL with its credentials replaced: `redis://:pw@host:6379` → `redis://[redacted]@host:6379`.
 * The one place URLs are stripped, for anything that shows or logs one.
 */
export function redactUrl(url: string): string {
  return url.replace(URL_USERINFO, `$1${REDACTED}@`);
}

/**
 * Credentials shorter than this are not masked by value (masking every "admin" or "pw" in a log
 * would garble it); they are still masked inside URLs and under credential field names.
 */
const MIN_MASKED_LENGTH = 6;

/**
 * Every credential the environment carries, as the literal strings that must never be shown:
 * the Redis password, the LLM key, the dashboard password, each API key (after its `tenant:`),
 * webhook and search API secrets.
 */
export function credentialsIn(source: Record<string, string | undefined> = process.env): string[] {
  const found = new Set<string>();
  const add = (value: string | undefined) => {
    const v = value?.trim();
    if (v && v.length >= MIN_MASKED_LENGTH) found.add(v);
  };
  for (const name of ['REDIS_URL', 'LLM_BASE_URL', 'WEB_SEARCH_URL']) {
    const url = source[name];
    if (!url) continue;
    try {
      const parsed = new URL(url);
      add(decodeURIComponent(parsed.password));
      add(parsed.password);
      if (parsed.password === '') add(decodeURIComponent(parsed.username));
    } catch {
      // Not a URL: the configuration check reports it; nothing to take from it here.
    }
  }
  for (const name of ['LLM_API_KEY', 'DASHBOARD_PASSWORD', 'WEBHOOK_SECRET', 'WEB_SEARCH_API_KEY']) add(source[name]);
  // The signing key is the base64 after `whsec_`: a message quoting only that part gives it away too.
  const webhookKey = source.WEBHOOK_SECRET?.trim();
  if (webhookKey?.startsWith('whsec_')) add(webhookKey.slice('whsec_'.length));
  for (const entry of (source.API_KEYS ?? '').split(',')) {
    const colon = entry.indexOf(':');
    add(entry);
    if (colon >= 0) add(entry.slice(colon + 1));
  }
  // Longest first, so a key that contains a shorter one is masked whole.
  return [...found].sort((a, b) => b.length - a.length);
}

/**
 * `text` with URL credentials stripped and every occurrence of a credential masked, also in the
 * JSON-escaped form it takes inside a serialized log line.
 */
export function maskCredentials(text: string, credentials: readonly string[]): string {
  let out = redactUrl(text);
  for (const secret of credentials) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret && out.includes(escaped)) out = out.split(escaped).join(REDACTED);
  }
  return out;
}
