import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiErrorBody } from '@research/contracts';
import { call, testPrefix } from '@research/testing';
import { AUTH, startApi, useApi, type TestApi } from '../test/api.js';

const require = createRequire(import.meta.url);
const api = useApi();

describe('health, readiness, metrics, OpenAPI (no key needed)', () => {
  it('/healthz and /readyz answer 200', async () => {
    expect((await call(api.url, 'GET', '/healthz')).status).toBe(200);
    const ready = await call(api.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ ok: true });
  });

  it('/metrics reports tasks, queue depth, step durations, restarts and workers from Redis', async () => {
    await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'count me' } });
    await api.store.stats.recordStepDuration(30);
    await api.store.stats.increment('containerRestarts');
    const res = await call(api.url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    for (const name of [
      'research_tasks_submitted_total 1',
      'research_tasks_finished_total{status="completed"} 0',
      'research_tasks{status="queued"} 1',
      'research_queue_jobs{queue="agent",state="prioritized"} 1',
      'research_step_duration_seconds_bucket{le="0.05"} 1',
      'research_step_duration_seconds_bucket{le="+Inf"} 1',
      'research_step_duration_seconds_count 1',
      'research_container_restarts_total 1',
      'research_workers_alive 0',
    ]) {
      expect(res.text).toContain(name);
    }
  });

  it('/metrics includes the step queue of each live worker', async () => {
    const { WorkerRegistry } = await import('@research/queue');
    const registry = new WorkerRegistry(api.redis, api.prefix);
    await registry.beat(
      { id: 'w-metrics', host: 'h', pid: 1, startedAt: new Date().toISOString(), running: [] },
      60_000,
    );
    const res = await call(api.url, 'GET', '/metrics');
    expect(res.text).toContain('research_workers_alive 1');
    expect(res.text).toContain('research_queue_jobs{queue="steps.w-metrics",state="waiting"} 0');
    await registry.remove('w-metrics');
  });

  it('/openapi.json is an OpenAPI 3.1 document with every route and the contract schemas', async () => {
    const res = await call(api.url, 'GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.json as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(doc.openapi).toBe('3.1.0');
    for (const path of [
      '/v1/jobs',
      '/v1/jobs/{id}',
      '/v1/jobs/{id}/events',
      '/v1/jobs/{id}/cancel',
      '/v1/jobs/{id}/files',
      '/v1/jobs/{id}/files/{path}',
      '/healthz',
      '/readyz',
      '/metrics',
    ]) {
      expect(doc.paths).toHaveProperty([path]);
    }
    expect(Object.keys(doc.components.schemas.TaskRequest?.properties ?? {})).toEqual(
      expect.arrayContaining(['prompt', 'maxSteps', 'timeoutSeconds', 'model', 'metadata']),
    );
    expect(doc.components.schemas.TaskView?.properties).toHaveProperty('progress');
  });

  it('answers 405 with Allow for a wrong method on a known route', async () => {
    const res = await call(api.url, 'POST', '/healthz');
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    ApiErrorBody.parse(res.json);
  });
});

describe('with Redis unreachable', () => {
  let down: TestApi;
  beforeAll(async () => {
    down = await startApi({ prefix: testPrefix('apitest'), redisUrl: 'redis://127.0.0.1:1', waitReady: false });
  });
  afterAll(async () => {
    await down?.close();
  });

  it('POST /v1/jobs answers 503 redis_unavailable (and does not hang)', async () => {
    const res = await call(down.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'p' } });
    expect(res.status).toBe(503);
    expect(ApiErrorBody.parse(res.json).error.code).toBe('redis_unavailable');
  });

  it('other routes answer 503 too; bad input is still a 4xx; liveness stays 200', async () => {
    for (const path of ['/v1/jobs/abc', '/v1/jobs/abc/events', '/v1/jobs/abc/files', '/v1/jobs/abc/files/a.md']) {
      const res = await call(down.url, 'GET', path, { headers: AUTH });
      expect(res.status).toBe(503);
      expect(ApiErrorBody.parse(res.json).error.code).toBe('redis_unavailable');
    }
    expect((await call(down.url, 'POST', '/v1/jobs', { headers: AUTH, body: { nope: 1 } })).status).toBe(400);
    expect((await call(down.url, 'GET', '/readyz')).status).toBe(503);
    expect((await call(down.url, 'GET', '/metrics')).status).toBe(503);
    expect((await call(down.url, 'GET', '/healthz')).status).toBe(200);
  });
});

describe('main.js', () => {
  const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
  beforeAll(() => {
    // The test runs the compiled entry point, as `npm start` does; build it when missing.
    if (!existsSync(main)) {
      execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
      });
    }
  });

  /** `node dist/main.js` under `env` until it exits: its exit code and what it wrote to stderr. */
  const runMain = (env: NodeJS.ProcessEnv) =>
    new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [main], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('exit', (c) => resolve({ code: c, stderr: err }));
    });

  it('exits non-zero naming the variable when the configuration is bad', async () => {
    const { code, stderr } = await runMain({ ...process.env, PORT: 'abc', API_KEYS: 'k' });
    expect(code).not.toBe(0);
    expect(stderr).toContain('PORT');
  });

  it('refuses to start without API_KEYS', async () => {
    const { API_KEYS: _drop, ...rest } = process.env;
    const { code, stderr } = await runMain({ ...rest, PORT: '3999' });
    expect(code).not.toBe(0);
    expect(stderr).toContain('API_KEYS');
  });
});
