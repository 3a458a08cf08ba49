import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type Requirement } from './config.js';
import type { Env } from './env.js';

/** Tenant of a bare key in `API_KEYS` (one without `tenant:`), and of tasks made before tenants existed. */
export const DEFAULT_TENANT = 'default';

/** Keys are bearer secrets: shorter ones could be guessed. */
export const MIN_API_KEY_LENGTH = 16;

/** What a tenant name may be: it is part of Redis keys and log lines. */
export const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** One accepted bearer key, known only by its SHA-256 digest. */
export interface ApiKey {
  tenant: string;
  /** Sees and acts on every tenant's tasks. Only keys from `API_KEYS_FILE` can be admin keys. */
  admin: boolean;
  /** SHA-256 of the key's UTF-8 bytes. */
  digest: Buffer;
  /** A short public name of the key (the start of its digest), for rate limits and logs. */
  id: string;
  /** Where it was configured, for messages: `API_KEYS entry 2`, `API_KEYS_FILE line 7`. */
  source: string;
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

const keyOf = (tenant: string, admin: boolean, digest: Buffer, source: string): ApiKey => ({
  tenant,
  admin,
  digest,
  id: digest.subarray(0, 8).toString('hex'),
  source,
});

/**
 * Every key the API accepts: the `tenant:key` entries of `API_KEYS` (a bare key belongs to
 * {@link DEFAULT_TENANT}) and the `tenant sha256-hex [admin]` lines of `API_KEYS_FILE` (blank
 * lines and `#` comments are skipped). Throws a ConfigError naming the variable, the entry or
 * line, and the problem — never the key itself.
 */
export function loadApiKeys(env: Pick<Env, 'API_KEYS' | 'API_KEYS_FILE'>): ApiKey[] {
  const keys: ApiKey[] = [];
  const problems: { variable: string; message: string }[] = [];
  env.API_KEYS.forEach((entry, i) => {
    const source = `API_KEYS entry ${i + 1}`;
    const colon = entry.indexOf(':');
    const tenant = colon < 0 ? DEFAULT_TENANT : entry.slice(0, colon);
    const key = colon < 0 ? entry : entry.slice(colon + 1);
    if (!TENANT_PATTERN.test(tenant)) {
      problems.push({ variable: 'API_KEYS', message: `${source}: the tenant must be ${TENANT_RULE}` });
    } else if (key.length < MIN_API_KEY_LENGTH) {
      problems.push({
        variable: 'API_KEYS',
        message: `${source} (tenant ${tenant}): a key must be at least ${MIN_API_KEY_LENGTH} characters (this one has ${key.length})`,
      });
    } else {
      keys.push(keyOf(tenant, false, sha256(key), source));
    }
  });
  if (env.API_KEYS_FILE !== undefined) keys.push(...readKeysFile(env.API_KEYS_FILE, problems));
  const seen = new Map<string, string>();
  for (const key of keys) {
    const hex = key.digest.toString('hex');
    const first = seen.get(hex);
    if (first !== undefined) {
      problems.push({
        variable: key.source.startsWith('API_KEYS_FILE') ? 'API_KEYS_FILE' : 'API_KEYS',
        message: `${key.source} repeats the key of ${first}: a key belongs to one tenant`,
      });
    }
    seen.set(hex, key.source);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return keys;
}

const TENANT_RULE = '1 to 64 letters, digits, "_", "." or "-"';
const HEX_DIGEST = /^[0-9a-f]{64}$/i;

function readKeysFile(path: string, problems: { variable: string; message: string }[]): ApiKey[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push({ variable: 'API_KEYS_FILE', message: `cannot read ${path}: ${(err as Error).message}` });
    return [];
  }
  const keys: ApiKey[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const source = `API_KEYS_FILE line ${i + 1}`;
    const [tenant = '', digest = '', flag, ...rest] = line.split(/\s+/);
    const problem = !TENANT_PATTERN.test(tenant)
      ? `the tenant must be ${TENANT_RULE}`
      : !HEX_DIGEST.test(digest)
        ? 'expected "tenant sha256-hex-of-key [admin]" (64 hex digits)'
        : (flag !== undefined && flag !== 'admin') || rest.length > 0
          ? `unexpected ${JSON.stringify(flag === 'admin' ? rest[0] : flag)} (only "admin" may follow the digest)`
          : undefined;
    if (problem !== undefined) problems.push({ variable: 'API_KEYS_FILE', message: `${source}: ${problem}` });
    else keys.push(keyOf(tenant, flag === 'admin', Buffer.from(digest, 'hex'), source));
  }
  return keys;
}

/**
 * The API needs at least one key, and every key must be well formed: checked at start so a bad
 * entry stops the process with a message naming `API_KEYS` or `API_KEYS_FILE`.
 */
export const requireApiKeys: Requirement = (env) => {
  if (env.API_KEYS.length === 0 && env.API_KEYS_FILE === undefined)
    return { variable: 'API_KEYS', message: 'at least one bearer key is required (or API_KEYS_FILE)' };
  try {
    if (loadApiKeys(env).length === 0)
      return { variable: 'API_KEYS_FILE', message: 'the file lists no key; at least one bearer key is required' };
  } catch (err) {
    if (err instanceof ConfigError) return err.problems[0];
    throw err;
  }
  return undefined;
};
