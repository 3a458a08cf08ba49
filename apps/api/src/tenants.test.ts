import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, sha256 } from '@research/config';
import { ApiErrorBody, type TaskAccepted, TaskView } from '@research/contracts';
import { openApiDocument } from './openapi.js';
import { createServer } from './server.js';
import { call, cleanPrefix, raw, requireRedis, sse, testPrefix } from '@research/testing';
import { startApi, type TestApi } from '../test/api.js';

const prefix = testPrefix('apitest');
const dir = mkdtempSync(path.join(tmpdir(), 'tenants-'));
const ACME = 'acme-key-0123456789abcdef';
const ACME_2 = 'acme-second-key-0123456789';
const BETA = 'beta-key-0123456789abcdef';
const OPS = 'ops-admin-key-0123456789';
const LEGACY = 'default-tenant-key-0123456789';
const as = (key: string) => ({ authorization: `Bearer ${key}` });

let api: TestApi;
/** A task of tenant acme with events and a file, as a worker leaves them. */
let acmeTask: string;
let betaTask: string;

beforeAll(async () => {
  await requireRedis();
  const keysFile = path.join(dir, 'keys');
  // The admin key is known to the API only by its digest.
  writeFileSync(keysFile, `# operators\nops ${sha256(OPS).toString('hex')} admin\n`);
  api = await startApi({
    prefix,
    env: { API_KEYS: `acme:${ACME},acme:${ACME_2},beta:${BETA},${LEGACY}`, API_KEYS_FILE: keysFile },
  });
  const submit = async (key: string, prompt: string) => {
    const res = await call(api.url, 'POST', '/v1/jobs', {
      headers: as(key),
      body: { prompt, metadata: { team: 'x' } },
    });
    expect(res.status).toBe(202);
    return (res.json as TaskAccepted).id;
  };
  acmeTask = await submit(ACME, 'acme confidential research');
  betaTask = await submit(BETA, 'beta research');
  await api.store.events.append(acmeTask, { type: 'turn', at: new Date().toISOString(), turn: 1 });
  await api.store.files.save(acmeTask, [{ path: 'report.md', size: 6, content: Buffer.from('secret') }]);
});

afterAll(async () => {
  await api?.close();
  await cleanPrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

/** Every documented route that names a task, as concrete requests for task `id`. */
function taskRequests(id: string): { method: string; path: string }[] {
  const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths)
    .filter(([p]) => p.includes('{id}'))
    .flatMap(([p, ops]) =>
      Object.keys(ops).map((method) => ({
        method: method.toUpperCase(),
        path: p.replace('{id}', id).replace('{path}', 'report.md'),
      })),
    );
}

/** Route paths of the app's `/v1` routers, as OpenAPI paths (`/v1/jobs/{id}/files/{path}`). */
function v1Routes(app: Express): string[] {
  type Layer = { route?: { path: string }; handle?: { stack?: Layer[] } };
  const found: string[] = [];
  const walk = (stack: Layer[], depth: number) => {
    for (const layer of stack) {
      if (layer.route && depth > 0) found.push(`/v1${layer.route.path.replace(/[:*](\w+)/g, '{$1}')}`);
      if (layer.handle?.stack) walk(layer.handle.stack, depth + 1);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, 0);
  return found;
}

describe('tenants', () => {
  it('every /v1 route is documented, so the checks below reach every task route', () => {
    const logger = createLogger({ level: 'silent', pretty: false });
    const app = createServer({ env: api.env, redis: api.redis, store: api.store, queue: api.queue, logger });
    const routes = v1Routes(app);
    expect(routes).toEqual(expect.arrayContaining(['/v1/jobs/{id}', '/v1/jobs/{id}/events']));
    const documented = Object.keys((openApiDocument() as { paths: Record<string, unknown> }).paths);
    for (const route of routes) expect(documented, route).toContain(route);
    // Status, events, files, one file, cancel: at least these.
    expect(taskRequests('x').length).toBeGreaterThanOrEqual(5);
  });

  it("another tenant's task answers 404 on every route, exactly like a task that does not exist", async () => {
    for (const { method, path: route } of taskRequests(acmeTask)) {
      const res = await raw(api.port, method, route, as(BETA));
      const unknown = await raw(
        api.port,
        method,
        route.replace(acmeTask, '00000000-0000-4000-8000-000000000000'),
        as(BETA),
      );
      expect(res.status, `${method} ${route}`).toBe(404);
      expect(ApiErrorBody.parse(res.json()).error.code).toBe('not_found');
      expect(res.body.replace(acmeTask, 'ID')).toBe(unknown.body.replace('00000000-0000-4000-8000-000000000000', 'ID'));
      expect(res.body).not.toContain('confidential');
      expect(res.body).not.toContain('secret');
    }
    // The cancel above changed nothing.
    const view = TaskView.parse((await call(api.url, 'GET', `/v1/jobs/${acmeTask}`, { headers: as(ACME) })).json);
    expect(view.status).toBe('queued');
    expect(await api.store.cancels.isRequested(acmeTask)).toBe(false);
  });

  it('the owner sees its task with its tenant; every key of the tenant does', async () => {
    for (const key of [ACME, ACME_2]) {
      const res = await call(api.url, 'GET', `/v1/jobs/${acmeTask}`, { headers: as(key) });
      expect(res.status).toBe(200);
      expect(TaskView.parse(res.json)).toMatchObject({
        id: acmeTask,
        tenant: 'acme',
        prompt: 'acme confidential research',
      });
      const file = await raw(api.port, 'GET', `/v1/jobs/${acmeTask}/files/report.md`, as(key));
      expect(file.body).toBe('secret');
    }
  });

  it('an admin key sees every tenant', async () => {
    for (const [id, tenant] of [
      [acmeTask, 'acme'],
      [betaTask, 'beta'],
    ] as const) {
      const view = await call(api.url, 'GET', `/v1/jobs/${id}`, { headers: as(OPS) });
      expect(view.status).toBe(200);
      expect(TaskView.parse(view.json).tenant).toBe(tenant);
      expect((await call(api.url, 'GET', `/v1/jobs/${id}/files`, { headers: as(OPS) })).status).toBe(200);
    }
    const events = await sse(api.port, `/v1/jobs/${acmeTask}/events`, as(OPS));
    expect(events.status).toBe(200);
    expect((await events.waitFor(2)).map((m) => m.event)).toEqual(['status', 'turn']);
    events.close();
    const cancelled = await call(api.url, 'POST', `/v1/jobs/${betaTask}/cancel`, { headers: as(OPS) });
    expect(cancelled.status).toBe(202);
    expect(TaskView.parse(cancelled.json)).toMatchObject({ status: 'cancelled', tenant: 'beta' });
  });

  it('a task recorded before tenants belongs to the default tenant', async () => {
    const id = `legacy-${Date.now()}`;
    await api.store.lifecycle.create({
      id,
      request: { prompt: 'old' },
      createdAt: new Date().toISOString(),
      maxSteps: 3,
    });
    expect((await call(api.url, 'GET', `/v1/jobs/${id}`, { headers: as(ACME) })).status).toBe(404);
    const view = await call(api.url, 'GET', `/v1/jobs/${id}`, { headers: as(LEGACY) });
    expect(view.status).toBe(200);
    expect(TaskView.parse(view.json).tenant).toBe('default');
  });

  it('idempotency keys are scoped per tenant: shared by its keys, separate from other tenants', async () => {
    const headers = { 'idempotency-key': `scoped-${Date.now()}` };
    const post = (key: string) =>
      call(api.url, 'POST', '/v1/jobs', { headers: { ...as(key), ...headers }, body: { prompt: 'once per tenant' } });
    const [a, a2, b] = [await post(ACME), await post(ACME_2), await post(BETA)];
    expect([a.status, a2.status, b.status]).toEqual([202, 202, 202]);
    expect(a2.json.id).toBe(a.json.id);
    expect(b.json.id).not.toBe(a.json.id);
  });

  it('the OpenAPI document shows the tenant, the 404 for other tenants and the 429s', () => {
    const doc = openApiDocument() as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(doc.components.schemas.TaskView?.properties).toHaveProperty('tenant');
    expect(doc.paths['/v1/jobs/{id}']?.get?.responses['404']?.description).toMatch(/another tenant/);
    expect(doc.paths['/v1/jobs']?.post?.responses['429']?.description).toMatch(/quota_exceeded/);
    expect(doc.paths['/v1/jobs/{id}/events']?.get?.responses).toHaveProperty('204');
  });
});
