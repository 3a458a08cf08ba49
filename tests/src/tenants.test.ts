import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TaskView } from '@research/contracts';
import { replayPrompt } from '@research/testing';
import { useSystem } from './use-system.js';

const ACME = 'acme-system-key-0123456789';
const BETA = 'beta-system-key-0123456789';
const OPS = 'ops-system-admin-key-0123456789';
const as = (key: string) => ({ authorization: `Bearer ${key}` });
const UNKNOWN = '00000000-0000-4000-8000-000000000000';

const dir = mkdtempSync(path.join(tmpdir(), 'tenants-sys-'));
let acmeTask: string;
let betaTask: string;

const sys = useSystem(async (sys) => {
  const keysFile = path.join(dir, 'keys');
  writeFileSync(keysFile, `ops ${createHash('sha256').update(OPS).digest('hex')} admin\n`);
  await sys.startApi({ API_KEYS: `acme:${ACME},beta:${BETA}`, API_KEYS_FILE: keysFile });
  await sys.startWorker(`tenants-${sys.id}`);
  acmeTask = await sys.submit({ prompt: replayPrompt(['echo acme-secret > secret.txt']) }, as(ACME));
  betaTask = await sys.submit({ prompt: replayPrompt(['echo beta > note.txt']) }, as(BETA));
  for (const [id, key] of [
    [acmeTask, ACME],
    [betaTask, BETA],
  ] as const) {
    await waitFinal(id, key);
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function waitFinal(id: string, key: string): Promise<TaskView> {
  for (let i = 0; i < 600; i++) {
    const view = (await (await sys.request(`/v1/jobs/${id}`, { headers: as(key) })).json()) as TaskView;
    if (['completed', 'failed', 'cancelled'].includes(view.status)) return view;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`task ${id} did not finish`);
}

const routes = (id: string): [string, string][] => [
  ['GET', `/v1/jobs/${id}`],
  ['GET', `/v1/jobs/${id}/events`],
  ['GET', `/v1/jobs/${id}/files`],
  ['GET', `/v1/jobs/${id}/files/secret.txt`],
  ['POST', `/v1/jobs/${id}/cancel`],
];

describe('tenants on the real API and worker', () => {
  it('the task ran and its owner reads it, with its tenant', async () => {
    const view = (await (await sys.request(`/v1/jobs/${acmeTask}`, { headers: as(ACME) })).json()) as TaskView;
    expect(view).toMatchObject({ status: 'completed', tenant: 'acme' });
    const file = await sys.request(`/v1/jobs/${acmeTask}/files/secret.txt`, { headers: as(ACME) });
    expect(await file.text()).toBe('acme-secret\n');
  });

  it("tenant B gets 404 on every route for A's task, the same answer as for a task that does not exist", async () => {
    for (const [method, route] of routes(acmeTask)) {
      const res = await sys.request(route, { method, headers: as(BETA) });
      const unknown = await sys.request(route.replace(acmeTask, UNKNOWN), { method, headers: as(BETA) });
      const [text, unknownText] = [await res.text(), await unknown.text()];
      expect(res.status, `${method} ${route}`).toBe(404);
      expect(text.replace(acmeTask, 'ID')).toBe(unknownText.replace(UNKNOWN, 'ID'));
      expect(text).not.toContain('acme-secret');
    }
  });

  it('an admin key sees both tenants: status, events and files', async () => {
    for (const [id, tenant, file] of [
      [acmeTask, 'acme', 'secret.txt'],
      [betaTask, 'beta', 'note.txt'],
    ] as const) {
      const view = (await (await sys.request(`/v1/jobs/${id}`, { headers: as(OPS) })).json()) as TaskView;
      expect(view).toMatchObject({ id, tenant, status: 'completed' });
      expect((await sys.request(`/v1/jobs/${id}/files/${file}`, { headers: as(OPS) })).status).toBe(200);
      const events = await sys.request(`/v1/jobs/${id}/events`, {
        headers: { ...as(OPS), accept: 'text/event-stream' },
      });
      expect(events.status).toBe(200);
      expect(await events.text()).toContain('"status":"completed"');
    }
  });

  it('a reconnect after the final event gets 204; an out-of-range event id gets 400', async () => {
    const all = await sys.request(`/v1/jobs/${acmeTask}/events`, { headers: as(ACME) });
    const last = [...(await all.text()).matchAll(/^id: (.+)$/gm)].at(-1)?.[1];
    expect(last).toBeDefined();
    const again = await sys.request(`/v1/jobs/${acmeTask}/events`, {
      headers: { ...as(ACME), 'last-event-id': last! },
    });
    expect(again.status).toBe(204);
    const bad = await sys.request(`/v1/jobs/${acmeTask}/events?lastEventId=18446744073709551616-0`, {
      headers: as(ACME),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^lastEventId /);
  });
});
