import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, until } from '@research/testing';
import { AUTH, OTHER_KEY, useApi } from '../test/api.js';
import { openApiDocument } from './openapi.js';

const api = useApi();

/**
 * Live traffic through Prism's validating proxy: every answer of the API is checked against the
 * document, and Prism reports what does not conform in `sl-violations`.
 */
describe('live traffic conforms to the document (Prism proxy)', () => {
  let prism: ChildProcess | undefined;
  let prismUrl = '';
  let dir = '';
  let output = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'openapi-contract-'));
    const docPath = path.join(dir, 'openapi.json');
    writeFileSync(docPath, JSON.stringify(openApiDocument()));
    const port = await freePort();
    prismUrl = `http://127.0.0.1:${port}`;
    const cli = createRequire(import.meta.url).resolve('@stoplight/prism-cli/dist/index.js');
    prism = spawn(process.execPath, [cli, 'proxy', docPath, api.url, '--host', '127.0.0.1', '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prism.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    prism.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    await until(
      'Prism listens',
      async () => {
        if (prism?.exitCode !== null) throw new Error(`prism exited: ${output}`);
        return fetch(`${prismUrl}/healthz`).then(
          async (r) => {
            await r.body?.cancel();
            return true;
          },
          () => false,
        );
      },
      60_000,
      200,
    );
  }, 90_000);

  afterAll(async () => {
    if (prism && prism.exitCode === null) {
      const exited = new Promise((r) => prism?.once('exit', r));
      prism.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const checked: string[] = [];
  /**
   * One request through the proxy; fails on any violation Prism reports for it. A request sent
   * invalid on purpose (`invalid`) must be one Prism finds invalid too, and its answer must conform.
   */
  async function through(
    method: string,
    route: string,
    options: { headers?: Record<string, string>; body?: unknown; invalid?: boolean } = {},
  ): Promise<{ status: number; text: string; json: () => unknown }> {
    const headers: Record<string, string> = { ...AUTH, ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${prismUrl}${route}`, {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await res.text();
    const header = res.headers.get('sl-violations');
    const violations = (header === null ? [] : JSON.parse(header)) as { location: string[] }[];
    const what = `${method} ${route} → ${res.status}`;
    const ofRequest = violations.filter((v) => v.location[0] === 'request');
    expect(
      violations.filter((v) => v.location[0] !== 'request'),
      what,
    ).toEqual([]);
    if (options.invalid) expect(ofRequest.length, what).toBeGreaterThan(0);
    else expect(ofRequest, what).toEqual([]);
    checked.push(`${method} ${route} ${res.status}`);
    return { status: res.status, text, json: () => JSON.parse(text) };
  }

  it('every route, answers and errors alike, with 0 violations', async () => {
    const submitted = await through('POST', '/v1/jobs', {
      body: { prompt: 'contract check', tags: ['contract'], priority: 7, ttlSeconds: 600 },
      headers: { 'idempotency-key': `contract-${Date.now()}` },
    });
    expect(submitted.status, submitted.text).toBe(202);
    const id = (submitted.json() as { id: string }).id;
    expect((await through('POST', '/v1/jobs', { body: { prompt: '' }, invalid: true })).status).toBe(400);

    const batch = await through('POST', '/v1/jobs/batch', {
      body: {
        tasks: [
          { prompt: 'one', idempotencyKey: `b-${Date.now()}` },
          { prompt: 'two', priority: 42 },
        ],
      },
    });
    expect(batch.status).toBe(200);
    expect((await through('POST', '/v1/jobs/batch', { body: { tasks: [] }, invalid: true })).status).toBe(400);

    expect((await through('GET', '/v1/jobs?tag=contract&status=queued&limit=1')).status).toBe(200);
    expect((await through('GET', '/v1/jobs?limit=1000', { invalid: true })).status).toBe(400);
    expect((await through('GET', `/v1/jobs/${id}`)).status).toBe(200);
    expect((await through('DELETE', `/v1/jobs/${id}`)).status).toBe(409);
    expect((await through('POST', `/v1/jobs/${id}/cancel`)).status).toBe(202);
    expect((await through('POST', `/v1/jobs/${id}/cancel`)).status).toBe(409);

    // The cancelled task's stream: its events, then the end. Each message's data is a TaskEvent.
    const events = await through('GET', `/v1/jobs/${id}/events`);
    expect(events.status).toBe(200);
    const validate = new Ajv2020({ strict: false }).compile(
      (openApiDocument() as { components: { schemas: Record<string, object> } }).components.schemas.TaskEvent!,
    );
    const data = events.text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)));
    expect(data.length).toBeGreaterThanOrEqual(2);
    for (const d of data) expect(validate(d), JSON.stringify(validate.errors)).toBe(true);

    await api.store.files.save(id, [{ path: 'data/prices.csv', size: 4, content: Buffer.from('a,b\n') }]);
    expect((await through('GET', `/v1/jobs/${id}/files`)).status).toBe(200);
    const file = await through('GET', `/v1/jobs/${id}/files/data%2Fprices.csv`);
    expect(file.status).toBe(200);
    expect(file.text).toBe('a,b\n');
    expect((await through('GET', `/v1/jobs/${id}/files/nope.txt`)).status).toBe(404);
    expect((await through('GET', `/v1/jobs/${id}/archive`)).status).toBe(200);
    expect((await through('GET', '/v1/usage?from=2026-01-01&to=2026-01-31')).status).toBe(200);
    expect((await through('GET', '/v1/usage?from=2026-02-01&to=2026-01-01')).status).toBe(400);
    expect((await through('GET', `/v1/jobs/${id}`, { headers: { authorization: `Bearer ${OTHER_KEY}` } })).status).toBe(
      404,
    );
    expect((await through('DELETE', `/v1/jobs/${id}`)).status).toBe(204);
    expect((await through('GET', `/v1/jobs/${id}`)).status).toBe(404);

    for (const route of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
      expect((await through('GET', route, { headers: {} })).status).toBe(200);
    }
    // Every operation of the document was driven at least once.
    const doc = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
    const missed = Object.entries(doc.paths).flatMap(([template, ops]) => {
      const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/?]+')}(\\?|$)`);
      return Object.keys(ops)
        .map((m) => m.toUpperCase())
        .filter((m) => !checked.some((c) => c.startsWith(`${m} `) && pattern.test(c.split(' ')[1]!)))
        .map((m) => `${m} ${template}`);
    });
    expect(missed).toEqual([]);
  }, 120_000);
});
