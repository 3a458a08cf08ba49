import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  ENV,
  envDefault,
  loadConfig,
  loadEnv,
  requireApiKeys,
  requireLlmEndpoint,
  type EnvName,
} from './index.js';

describe('loadEnv', () => {
  it('gives the documented defaults for an empty environment', () => {
    const env = loadEnv({});
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(env.QUEUE_PREFIX).toBe('{research}');
    expect(env.PORT).toBe(3000);
    expect(env.DASHBOARD_PORT).toBe(3001);
    expect(env.SANDBOX_IMAGE).toBe('research-sandbox:latest');
    expect(env.SANDBOX_VOLUME).toBe('daytona-workspace');
    expect(env.SANDBOX_NETWORK).toBe('none');
    expect(env.LLM_PROVIDER).toBe('offline');
    expect(env.TOOL_CALL_FORMAT).toBe('xml');
    expect(env.API_KEYS).toEqual([]);
    expect(env.WORKER_ID).toMatch(new RegExp(`-${process.pid}-[0-9a-f]{6}$`));
  });

  it('parses good values', () => {
    const env = loadEnv({
      PORT: '8080',
      API_KEYS: ' a, b ,,c',
      SANDBOX_CPUS: '0.5',
      SANDBOX_ON_SHUTDOWN: 'remove',
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: 'http://127.0.0.1:9999/v1',
      DASHBOARD_READONLY_LOOPBACK: 'true',
      TOOL_CALL_FORMAT: 'native',
      WORKER_ID: 'worker-1',
    });
    expect(env.PORT).toBe(8080);
    expect(env.API_KEYS).toEqual(['a', 'b', 'c']);
    expect(env.SANDBOX_CPUS).toBe(0.5);
    expect(env.SANDBOX_ON_SHUTDOWN).toBe('remove');
    expect(env.DASHBOARD_READONLY_LOOPBACK).toBe(true);
    expect(env.TOOL_CALL_FORMAT).toBe('native');
  });

  it('treats empty strings as unset', () => {
    expect(loadEnv({ PORT: '', SANDBOX_IMAGE: '  ' }).PORT).toBe(3000);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['REDIS_URL', 'http://example'],
    ['SANDBOX_MEMORY_MB', '-5'],
    ['SANDBOX_ON_SHUTDOWN', 'explode'],
    ['LLM_PROVIDER', 'magic'],
    ['TOOL_CALL_FORMAT', 'json'],
    ['WORKER_ID', 'has:colon'],
    ['LOG_LEVEL', 'loud'],
  ])('rejects %s=%s naming the variable and the value', (name, value) => {
    try {
      loadEnv({ [name]: value });
      expect.unreachable('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.problems.map((p) => p.variable)).toEqual([name]);
      expect(e.message).toContain(name);
      expect(e.message).toContain(JSON.stringify(value));
    }
  });

  it('with REDIS_CLUSTER=true, refuses a prefix without a hash tag', () => {
    expect(loadEnv({}).REDIS_CLUSTER).toBe(false);
    expect(loadEnv({ REDIS_CLUSTER: 'true' })).toMatchObject({ REDIS_CLUSTER: true, QUEUE_PREFIX: '{research}' });
    expect(loadEnv({ REDIS_CLUSTER: 'true', QUEUE_PREFIX: 'app:{eu}' }).QUEUE_PREFIX).toBe('app:{eu}');
    expect(loadEnv({ QUEUE_PREFIX: 'research' }).QUEUE_PREFIX).toBe('research');
    for (const prefix of ['research', '{}research', 'research}{', '{research']) {
      expect(() => loadEnv({ REDIS_CLUSTER: 'true', QUEUE_PREFIX: prefix }), prefix).toThrow(
        /QUEUE_PREFIX: REDIS_CLUSTER=true needs a hash-tagged prefix/,
      );
    }
  });

  it('names the allowed range for a number out of range, and the kind of number for one of the wrong kind', () => {
    const message = (source: Record<string, string>) => {
      try {
        loadEnv(source);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(message({ WORKER_CONCURRENCY: '100000' })).toMatch(
      /WORKER_CONCURRENCY: expected a whole number from 1 to \d+ \(got "100000"\)/,
    );
    expect(message({ WORKER_CONCURRENCY: '0' })).toMatch(
      /WORKER_CONCURRENCY: expected a whole number from 1 to \d+ \(got "0"\)/,
    );
    expect(message({ WORKER_CONCURRENCY: '2.5' })).toMatch(/WORKER_CONCURRENCY: expected a whole number \(got "2.5"\)/);
    expect(message({ WORKER_CONCURRENCY: 'many' })).toMatch(/WORKER_CONCURRENCY: expected a number \(got "many"\)/);
    expect(message({ SANDBOX_PIDS: '3' })).toMatch(/SANDBOX_PIDS: expected a whole number of at least 16 \(got "3"\)/);
    expect(message({ SANDBOX_CPUS: '0' })).toMatch(
      /SANDBOX_CPUS: expected a number above 0 and at most 256 \(got "0"\)/,
    );
    // A check with its own wording keeps it.
    expect(message({ PORT: '70000' })).toMatch(/PORT: expected a port from 1 to 65535/);
  });

  it('reports every bad variable at once', () => {
    expect(() => loadEnv({ PORT: 'x', DASHBOARD_PORT: 'y' })).toThrow(/PORT[\s\S]*DASHBOARD_PORT/);
  });

  it('applies app requirements', () => {
    expect(() => loadConfig([requireApiKeys], {})).toThrow(/API_KEYS: at least one bearer key is required/);
    // Keys have at least 16 characters (api-keys.test.ts has the refusals).
    expect(loadConfig([requireApiKeys], { API_KEYS: 'k'.repeat(16) }).API_KEYS).toEqual(['k'.repeat(16)]);
    expect(() => loadConfig([requireLlmEndpoint], { LLM_PROVIDER: 'openai' })).toThrow(/LLM_BASE_URL/);
  });
});

describe('README configuration table', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  const rows = new Map<string, string>();
  for (const line of readme.split('\n')) {
    const m = /^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|/.exec(line);
    if (m) rows.set(m[1]!, m[2]!.trim());
  }

  it('lists exactly the variables the code reads', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ENV).sort());
  });

  it('shows the defaults the code uses', () => {
    for (const name of Object.keys(ENV) as EnvName[]) {
      const d = envDefault(name);
      expect(rows.get(name), name).toBe(d === undefined ? '—' : `\`${d}\``);
    }
  });
});
