import { describe, expect, it } from 'vitest';
import { createLogger, credentialsIn, loadEnv, maskCredentials, redactUrl } from './index.js';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => lines.push(line) } };
}

describe('redactUrl', () => {
  it.each([
    ['redis://:s3cret@127.0.0.1:6379/0', 'redis://[redacted]@127.0.0.1:6379/0'],
    ['rediss://default:s3cret@cache.internal:6380', 'rediss://[redacted]@cache.internal:6380'],
    ['https://user:pa%40ss@llm.example/v1', 'https://[redacted]@llm.example/v1'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['see redis://:pw@h:1 and http://u:p@x/y', 'see redis://[redacted]@h:1 and http://[redacted]@x/y'],
  ])('%s → %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});

describe('credentialsIn', () => {
  it('finds the Redis password, the LLM key, the dashboard password and every API key', () => {
    const found = credentialsIn({
      REDIS_URL: 'redis://:redis-pass-123@127.0.0.1:6379',
      LLM_API_KEY: 'sk-llm-key-0123456789',
      DASHBOARD_PASSWORD: 'dash-pass-123',
      API_KEYS: 'acme:acme-key-0123456789,bare-key-0123456789',
      WEBHOOK_SECRET: 'whsec_0123456789',
    });
    for (const secret of [
      'redis-pass-123',
      'sk-llm-key-0123456789',
      'dash-pass-123',
      'acme-key-0123456789',
      'bare-key-0123456789',
      'whsec_0123456789',
    ]) {
      expect(found).toContain(secret);
    }
  });
});

describe('createLogger', () => {
  const credentials = credentialsIn({
    REDIS_URL: 'redis://:redis-pass-123@127.0.0.1:6379',
    LLM_API_KEY: 'sk-llm-key-0123456789',
    API_KEYS: 'acme:acme-key-0123456789',
  });

  it('never writes a credential: URL userinfo, known values in messages, fields, errors and nested objects', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'debug', pretty: false, credentials, destination });
    log.info({ redis: 'redis://:redis-pass-123@127.0.0.1:6379' }, 'connecting');
    log.info('connecting to redis://user:other-pass@10.0.0.1:6379');
    log.warn({ err: new Error('401 from the endpoint: key sk-llm-key-0123456789 is invalid') }, 'model failed');
    log.debug({ request: { headers: { authorization: 'Bearer acme-key-0123456789' } } }, 'request');
    log.info({ nested: { apiKey: 'whatever-it-is', password: 'pw' } }, 'fields');
    log.info({ quoted: 'a "sk-llm-key-0123456789" b' }, `text with acme-key-0123456789 inside`);
    const text = lines.join('');
    expect(lines).toHaveLength(6);
    for (const secret of [
      'redis-pass-123',
      'other-pass',
      'sk-llm-key-0123456789',
      'acme-key-0123456789',
      'whatever-it-is',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('redis://[redacted]@127.0.0.1:6379');
    expect(text).toContain('redis://[redacted]@10.0.0.1:6379');
    // Lines stay valid JSON.
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(JSON.parse(lines[2]!).err.message).toBe('401 from the endpoint: key [redacted] is invalid');
  });

  it('masks in pretty output too', () => {
    const { lines, destination } = capture();
    createLogger({ pretty: true, credentials, destination }).info(
      'url redis://:redis-pass-123@h:1 key sk-llm-key-0123456789',
    );
    expect(lines.join('')).toContain('url redis://[redacted]@h:1 key [redacted]');
  });

  it('masks a credential that JSON escapes', () => {
    expect(maskCredentials(JSON.stringify({ v: 'x"pa\\ss"word"y' }), ['"pa\\ss"word"'])).toBe('{"v":"x[redacted]y"}');
  });
});

describe('configuration errors', () => {
  it('never echo a credential; a URL is shown without its userinfo', () => {
    expect(() => loadEnv({ REDIS_URL: 'http://user:hunter2-secret@host' })).toThrow(
      /REDIS_URL: .*"http:\/\/\[redacted\]@host"/,
    );
    expect(() => loadEnv({ REDIS_URL: 'http://user:hunter2-secret@host' })).not.toThrow(/hunter2/);
  });
});
