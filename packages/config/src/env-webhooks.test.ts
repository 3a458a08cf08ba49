import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadEnv } from './config.js';
import { createLogger } from './logger.js';
import { credentialsIn } from './redact.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;

describe('the webhook variables', () => {
  it('default to no secret, no tenant defaults and 8 attempts from 5 s', () => {
    const env = loadEnv({});
    expect(env.WEBHOOK_SECRET).toBeUndefined();
    expect(env.TENANT_WEBHOOK_URLS).toEqual({});
    expect([env.WEBHOOK_ATTEMPTS, env.WEBHOOK_BACKOFF_MS, env.WEBHOOK_TIMEOUT_MS]).toEqual([8, 5_000, 10_000]);
    expect(env.LLM_STREAM).toBe(false);
  });

  it('take a whsec_ secret and tenant=url defaults', () => {
    const env = loadEnv({
      WEBHOOK_SECRET: secret,
      TENANT_WEBHOOK_URLS: 'acme=https://hooks.acme.example/research, beta=http://10.0.0.5:8080/h',
    });
    expect(env.WEBHOOK_SECRET).toBe(secret);
    expect(env.TENANT_WEBHOOK_URLS).toEqual({
      acme: 'https://hooks.acme.example/research',
      beta: 'http://10.0.0.5:8080/h',
    });
  });

  it('refuse a secret without whsec_, too short or not base64, without echoing it', () => {
    for (const bad of [randomBytes(32).toString('base64'), 'whsec_c2hvcnQ=', 'whsec_not base64!!']) {
      let message = '';
      try {
        loadEnv({ WEBHOOK_SECRET: bad });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/WEBHOOK_SECRET: expected whsec_/);
      expect(message).not.toContain(bad);
    }
  });

  it('refuse tenant defaults that are not tenant=http(s) URL, and tenant defaults without a secret', () => {
    expect(() => loadEnv({ WEBHOOK_SECRET: secret, TENANT_WEBHOOK_URLS: 'acme' })).toThrow(/TENANT_WEBHOOK_URLS/);
    expect(() => loadEnv({ WEBHOOK_SECRET: secret, TENANT_WEBHOOK_URLS: 'acme=ftp://x' })).toThrow(
      /TENANT_WEBHOOK_URLS/,
    );
    expect(() => loadEnv({ TENANT_WEBHOOK_URLS: 'acme=https://x.example' })).toThrow(/WEBHOOK_SECRET: .*signed/);
  });

  it('mask the secret in logs, whole or as its base64 key alone', () => {
    const key = secret.slice('whsec_'.length);
    const credentials = credentialsIn({ WEBHOOK_SECRET: secret });
    expect(credentials).toEqual(expect.arrayContaining([secret, key]));
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      credentials,
      destination: { write: (line: string) => lines.push(line) },
    });
    logger.info({ detail: `signing with ${secret}`, other: `key ${key}` }, `the secret is ${secret}`);
    const out = lines.join('');
    expect(out).not.toContain(key);
    expect(out).toContain('[redacted]');
  });
});
