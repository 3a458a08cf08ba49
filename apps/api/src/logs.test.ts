import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanPrefix, requireRedis, testPrefix } from '@research/testing';

const prefix = testPrefix('apitest');
const REDIS_PASSWORD = 'redis-pass-Zq81xLm';
const LLM_KEY = 'sk-llm-test-key-Wd93Jf0aQ';
const API_KEY = 'logs-test-api-key-0123456789';
const PORT = 30_000 + Math.floor(Math.random() * 20_000);
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

let output = '';

beforeAll(async () => {
  await requireRedis();
  // The compiled entry point, as `npm start` runs it; built when missing.
  if (!existsSync(MAIN)) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
  }
  // The test Redis has no password: ioredis sends AUTH, is told none is needed, and goes on.
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:6379`,
      LLM_API_KEY: LLM_KEY,
      API_KEYS: `acme:${API_KEY}`,
      QUEUE_PREFIX: prefix,
      PORT: String(PORT),
      LOG_LEVEL: 'trace',
      LOG_PRETTY: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const base = `http://127.0.0.1:${PORT}`;
  const deadline = Date.now() + 20_000;
  while (
    !(await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the API did not come up:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // Work that logs: a refused key, an accepted task, a bad body, an unknown route.
  const auth = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
  await fetch(`${base}/v1/jobs/x`, { headers: { authorization: `Bearer ${LLM_KEY}` } });
  await fetch(`${base}/v1/jobs`, { method: 'POST', headers: auth, body: JSON.stringify({ prompt: `use ${LLM_KEY}` }) });
  await fetch(`${base}/v1/jobs`, { method: 'POST', headers: auth, body: '{"prompt":' });
  await fetch(`${base}/nope`);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
});

afterAll(async () => {
  await cleanPrefix(prefix);
});

describe('logs of an API process started with credentials', () => {
  it('carry neither the Redis password, the LLM key nor an API key', () => {
    expect(output).toContain('api listening');
    expect(output).toContain('redis://[redacted]@127.0.0.1:6379');
    expect(output).toContain('api stopping');
    for (const secret of [REDIS_PASSWORD, LLM_KEY, API_KEY]) expect(output).not.toContain(secret);
  });
});
