import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { AGENT_QUEUE, TaskStore, WorkerRegistry } from '@research/queue';
import { useDashboard } from '../test/dashboard.js';
import { basicHeader } from '@research/testing';

const prefix = `{dash-sec-${randomUUID().slice(0, 8)}}`;
const login = { user: 'ops', password: `pw-${randomUUID()}` };
const good = basicHeader(login.user, login.password);

const board = useDashboard(prefix, { login, workerStaleMs: 15_000, loginFailuresPerMin: 20 });

/** GET from a chosen loopback source address. */
function getFrom(
  localAddress: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: board.port, path, localAddress, agent: false, headers }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      })
      .on('error', reject);
  });
}

describe('failed logins, per client address', () => {
  it('lock out an address after 20 (its right login too); the right login from another address works', async () => {
    for (let i = 0; i < 20; i++)
      expect((await getFrom('127.0.0.2', '/api/queues', basicHeader(login.user, `guess-${i}`))).status).toBe(401);
    const locked = await getFrom('127.0.0.2', '/api/queues', basicHeader(login.user, 'guess-x'));
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect((await getFrom('127.0.0.2', '/api/queues', good)).status).toBe(429);
    expect((await getFrom('127.0.0.1', '/api/queues', good)).status).toBe(200);
  });

  it('a browser asking without credentials (for the challenge) is not counted', async () => {
    for (let i = 0; i < 30; i++) expect((await getFrom('127.0.0.3', '/', {})).status).toBe(401);
    expect((await getFrom('127.0.0.3', '/', good)).status).toBe(200);
  });
});

describe('security headers', () => {
  it.each(['/', '/workers', '/api/queues', '/static/images/logo.svg'])(
    '%s forbids framing and sniffing, with a CSP',
    async (path) => {
      for (const headers of [good, {}]) {
        const res = await fetch(`${board.base}${path}`, { headers });
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('x-frame-options')).toBe('DENY');
        const csp = res.headers.get('content-security-policy') ?? '';
        expect(csp).toContain("frame-ancestors 'none'");
        expect(csp).toContain("script-src 'self'");
        await res.arrayBuffer();
      }
    },
  );
});

describe('tenants', () => {
  it("names each task job with its task's tenant, on the board and the workers page", async () => {
    const store = new TaskStore(board.redis, prefix);
    const agent = new Queue(AGENT_QUEUE, { connection: board.redis, prefix });
    const id = `tenant-${randomUUID().slice(0, 8)}`;
    const workerId = `w-${randomUUID().slice(0, 6)}`;
    try {
      const createdAt = new Date().toISOString();
      await store.lifecycle.create({
        id,
        request: { prompt: 'Research tenants' },
        createdAt,
        maxSteps: 5,
        tenant: 'acme',
      });
      await agent.add(
        'research: Research tenants',
        { taskId: id, request: { prompt: 'Research tenants' }, createdAt },
        { jobId: id },
      );

      const list = await fetch(`${board.base}/api/queues?activeQueue=${AGENT_QUEUE}&status=waiting`, { headers: good });
      const body = (await list.json()) as { queues: { name: string; jobs: { id: string; name: string }[] }[] };
      const job = body.queues.find((q) => q.name === AGENT_QUEUE)?.jobs.find((j) => j.id === id);
      expect(job?.name).toBe('acme · research: Research tenants');
      const one = (await (await fetch(`${board.base}/api/queues/${AGENT_QUEUE}/${id}`, { headers: good })).json()) as {
        job: { name: string; data: Record<string, unknown> };
      };
      expect(one.job.name).toBe('acme · research: Research tenants');
      // The job's data is shown as stored.
      expect(one.job.data).not.toHaveProperty('tenant');

      await new WorkerRegistry(board.redis, prefix).beat(
        { id: workerId, host: 'h', pid: 1, startedAt: createdAt, running: [id] },
        30_000,
      );
      const page = await (await fetch(`${board.base}/workers`, { headers: good })).text();
      expect(page).toContain(`${id}</a> <span class="tenant">acme</span>`);
      const json = (await (await fetch(`${board.base}/workers.json`, { headers: good })).json()) as {
        tenants: Record<string, string>;
      };
      expect(json.tenants).toEqual({ [id]: 'acme' });
    } finally {
      await new WorkerRegistry(board.redis, prefix).remove(workerId);
      await agent.obliterate({ force: true });
      await agent.close();
    }
  });
});
