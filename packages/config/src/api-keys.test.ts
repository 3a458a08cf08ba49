import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_TENANT, loadApiKeys, loadConfig, loadEnv, requireApiKeys, sha256 } from './index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'api-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keysFile(text: string): string {
  const file = path.join(dir, `keys-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, text);
  return file;
}

const hex = (key: string) => sha256(key).toString('hex');

describe('loadApiKeys', () => {
  it('reads tenant:key entries; a bare key belongs to the default tenant', () => {
    const keys = loadApiKeys(loadEnv({ API_KEYS: 'acme:acme-key-0123456789, bare-key-0123456789' }));
    expect(keys.map((k) => [k.tenant, k.admin, k.digest.toString('hex')])).toEqual([
      ['acme', false, hex('acme-key-0123456789')],
      [DEFAULT_TENANT, false, hex('bare-key-0123456789')],
    ]);
    expect(keys[0]!.id).toMatch(/^[0-9a-f]{16}$/);
  });

  it('reads API_KEYS_FILE: digests, admin flags, comments and blank lines', () => {
    const file = keysFile(
      `# team keys\n\nacme ${hex('from-file-acme-key')}\nops   ${hex('from-file-ops-key').toUpperCase()}  admin # on-call\r\n`,
    );
    const keys = loadApiKeys({ API_KEYS: [], API_KEYS_FILE: file });
    expect(keys.map((k) => [k.tenant, k.admin, k.source])).toEqual([
      ['acme', false, 'API_KEYS_FILE line 3'],
      ['ops', true, 'API_KEYS_FILE line 4'],
    ]);
    expect(keys[1]!.digest.equals(sha256('from-file-ops-key'))).toBe(true);
  });

  it.each([
    [
      'a key shorter than 16 characters',
      { API_KEYS: ['acme:short'] },
      /API_KEYS: API_KEYS entry 1 \(tenant acme\): a key must be at least 16 characters \(this one has 5\)/,
    ],
    [
      'a bare short key',
      { API_KEYS: ['k'] },
      /API_KEYS: API_KEYS entry 1 \(tenant default\): a key must be at least 16/,
    ],
    [
      'a bad tenant',
      { API_KEYS: ['no spaces allowed:0123456789abcdef'] },
      /API_KEYS: API_KEYS entry 1: the tenant must be/,
    ],
    [
      'the same key twice',
      { API_KEYS: ['a:0123456789abcdef', 'b:0123456789abcdef'] },
      /API_KEYS entry 2 repeats the key of API_KEYS entry 1/,
    ],
  ])('refuses %s, naming API_KEYS and never the key', (_what, env, message) => {
    try {
      loadApiKeys({ API_KEYS_FILE: undefined, ...env });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('0123456789abcdef');
    }
  });

  it.each([
    [
      'a line without a digest',
      'acme',
      /API_KEYS_FILE: API_KEYS_FILE line 1: expected "tenant sha256-hex-of-key \[admin\]"/,
    ],
    ['a digest of the wrong length', `acme ${hex('x').slice(1)}`, /line 1: expected/],
    ['an unknown flag', `acme ${hex('x')} root`, /line 1: unexpected "root"/],
    ['a bad tenant', `a/b ${hex('x')}`, /line 1: the tenant must be/],
  ])('refuses a keys file with %s, naming API_KEYS_FILE and the line', (_what, text, message) => {
    expect(() => loadApiKeys({ API_KEYS: [], API_KEYS_FILE: keysFile(text) })).toThrow(message);
  });

  it('refuses a keys file it cannot read', () => {
    expect(() => loadApiKeys({ API_KEYS: [], API_KEYS_FILE: path.join(dir, 'missing') })).toThrow(
      /API_KEYS_FILE: cannot read .*missing/,
    );
  });

  it('requireApiKeys stops the API at start on any of these, naming the variable', () => {
    expect(() => loadConfig([requireApiKeys], { API_KEYS: 'tiny' })).toThrow(/API_KEYS: .*at least 16 characters/);
    expect(() => loadConfig([requireApiKeys], { API_KEYS_FILE: keysFile('# none\n') })).toThrow(
      /API_KEYS_FILE: the file lists no key/,
    );
    const file = keysFile(`ops ${hex('ops-key-0123456789')} admin\n`);
    expect(loadConfig([requireApiKeys], { API_KEYS_FILE: file }).API_KEYS_FILE).toBe(file);
  });
});
