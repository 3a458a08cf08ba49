import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { AGENT_QUEUE, WEBHOOK_QUEUE, WorkerRegistry, createRedis, stepQueueName } from '@research/queue';
import { createDashboard } from './server.js';
import { useDashboard } from '../test/dashboard.js';
import { basicHeader, eventually, listen, testPrefix } from '@research/testing';

const prefix = testPrefix('dash-test');
const login = { user: 'ops', password: 'correct horse battery staple' };
const good = basicHeader(login.user, login.password);

const board = useDashboard(prefix, { login, workerStaleMs: 15_000, refreshIntervalMs: 250 });
const registry = () => new WorkerRegistry(board.redis, prefix);

async function queueNames(): Promise<string[]> {
  const res = await fetch(`${board.base}/api/queues`, { headers: good });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { queues: { name: string }[] };
  return body.queues.map((q) => q.name);
}

describe('login', () => {
  const paths = [
    '/',
    '/queue/agent',
    '/api/queues',
    '/api/queues/agent/missing/logs',
    '/static/images/logo.svg',
    '/workers',
    '/workers.json',
  ];

  it.each(paths)('answers 401 with a basic-auth challenge without a login: %s', async (path) => {
    const res = await fetch(`${board.base}${path}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="/);
    expect(await res.text()).not.toContain('agent');
  });

  it.each(['/', '/api/queues', '/workers'])('answers 401 to a wrong user or password: %s', async (path) => {
    for (const headers of [
      basicHeader(login.user, 'wrong'),
      basicHeader('someone', login.password),
      basicHeader(login.user, `${login.password}x`),
      { authorization: 'Basic not-base64!' },
      { authorization: `Bearer ${login.password}` },
    ]) {
      const res = await fetch(`${board.base}${path}`, { headers });
      expect(res.status).toBe(401);
    }
  });

  it('serves the board, its API, its assets and the workers page with the login', async () => {
    const page = await fetch(`${board.base}/`, { headers: good });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Research jobs');
    // The menu links to our workers page.
    expect(html).toContain('"miscLinks":[{"text":"Workers","url":"workers"}]');
    expect((await fetch(`${board.base}/static/images/logo.svg`, { headers: good })).status).toBe(200);
    expect(await queueNames()).toContain(AGENT_QUEUE);
    const workers = await fetch(`${board.base}/workers`, { headers: good });
    expect(workers.status).toBe(200);
    expect(await workers.text()).toContain('<h1>Workers</h1>');
  });
});

describe('queues', () => {
  it('shows a worker started after the dashboard within seconds, and drops it once reaped', async () => {
    const workerId = `late-${randomUUID().slice(0, 6)}`;
    const queueName = stepQueueName(workerId);
    expect(await queueNames()).not.toContain(queueName);

    await registry().beat(
      { id: workerId, host: 'test-host', pid: 4242, startedAt: new Date().toISOString(), running: [] },
      30_000,
    );
    // The worker's step queue exists in Redis once a step was added to it.
    const queue = new Queue(queueName, { connection: board.redis, prefix });
    await queue.add('step 0 · list-files · .', {
      taskId: 't',
      stepIndex: 0,
      callId: 'c0',
      action: { action: 'list-files' },
    });

    await eventually(`${queueName} on the board`, async () =>
      (await queueNames()).includes(queueName) ? true : undefined,
    );
    const res = await fetch(`${board.base}/api/queues?activeQueue=${encodeURIComponent(queueName)}&status=waiting`, {
      headers: good,
    });
    const body = (await res.json()) as { queues: { name: string; jobs: { name: string }[] }[] };
    expect(body.queues.find((q) => q.name === queueName)?.jobs.map((j) => j.name)).toEqual(['step 0 · list-files · .']);

    expect(await registry().reap(workerId, board.redis)).toBe(true);
    await queue.close();
    await eventually(`${queueName} gone from the board`, async () =>
      (await queueNames()).includes(queueName) ? undefined : true,
    );
    expect(await queueNames()).toContain(AGENT_QUEUE);
  });

  it('shows job data redacted and long outputs truncated', async () => {
    const agent = new Queue(AGENT_QUEUE, { connection: board.redis, prefix });
    try {
      const job = await agent.add(
        'research: market conditions',
        {
          taskId: 'redact-1',
          request: {
            prompt: 'Research current market conditions',
            metadata: { apiKey: 'sk-very-secret-key-123456', team: 'quant' },
          },
          createdAt: new Date().toISOString(),
        },
        { jobId: 'redact-1' },
      );
      const res = await fetch(`${board.base}/api/queues/${AGENT_QUEUE}/${job.id}`, { headers: good });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain('sk-very-secret-key-123456');
      const body = JSON.parse(text) as { job: { data: { request: { metadata: Record<string, unknown> } } } };
      expect(body.job.data.request.metadata).toEqual({ apiKey: '[redacted]', team: 'quant' });
    } finally {
      await agent.obliterate({ force: true });
      await agent.close();
    }
  });
});

describe('webhook deliveries', () => {
  it('are a queue of their own, after the agent queue; a destination shows its origin only', async () => {
    expect((await queueNames()).slice(0, 2)).toEqual([AGENT_QUEUE, WEBHOOK_QUEUE]);
    const hooks = new Queue(WEBHOOK_QUEUE, { connection: board.redis, prefix });
    try {
      // Only stored: the board reads it, nothing is sent.
      const job = await hooks.add(
        'webhook task.completed · t-1',
        {
          taskId: 't-1',
          deliveryId: 'msg_board_1',
          event: 'final',
          type: 'task.completed',
          url: 'https://hooks.chat.test/services/T000/B000/hook-credential?sig=also-credential',
          payload: '{}',
        },
        { jobId: 'msg_board_1' },
      );
      await job.log('attempt 1: retrying HTTP 503, http_error in 12 ms');
      const res = await fetch(`${board.base}/api/queues/${WEBHOOK_QUEUE}/${job.id}`, { headers: good });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).not.toContain('credential');
      const body = JSON.parse(text) as { job: { data: { url: string; taskId: string } } };
      expect(body.job.data).toMatchObject({ url: 'https://hooks.chat.test/…', taskId: 't-1' });
      const logs = await fetch(`${board.base}/api/queues/${WEBHOOK_QUEUE}/${job.id}/logs`, { headers: good });
      expect(await logs.json()).toEqual(['attempt 1: retrying HTTP 503, http_error in 12 ms']);
    } finally {
      await hooks.obliterate({ force: true });
      await hooks.close();
    }
  });
});

describe('workers page', () => {
  it('lists alive workers with their container and running tasks, escaped', async () => {
    const id = `w-${randomUUID().slice(0, 6)}`;
    await registry().beat(
      {
        id,
        host: 'box-1',
        pid: 99,
        startedAt: new Date().toISOString(),
        containerId: '0123456789abcdef0123',
        containerName: 'research-sandbox-w1',
        image: '<img src=x onerror=alert(1)>',
        running: ['task-abc'],
      },
      30_000,
    );
    try {
      const html = await (await fetch(`${board.base}/workers`, { headers: good })).text();
      expect(html).toContain(id);
      expect(html).toContain('research-sandbox-w1');
      expect(html).toContain('0123456789ab');
      expect(html).toContain('href="queue/agent/task-abc"');
      expect(html).toContain(`href="queue/steps.${id}"`);
      expect(html).not.toContain('<img src=x');
      expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');

      const json = (await (await fetch(`${board.base}/workers.json`, { headers: good })).json()) as {
        workers: { id: string; running: string[] }[];
      };
      expect(json.workers.find((w) => w.id === id)?.running).toEqual(['task-abc']);
    } finally {
      await registry().remove(id);
    }
  });
});

describe('read-only on loopback', () => {
  it('refuses to build a dashboard with neither a login nor read-only mode', () => {
    expect(() => createDashboard({ connection: board.redis, prefix, workerStaleMs: 1_000 })).toThrow(
      /login is required/,
    );
  });

  it('serves without a login but hides every write action', async () => {
    const ro = createDashboard({ connection: board.redis, prefix, readOnly: true, workerStaleMs: 1_000 });
    const server = await listen(ro.app);
    try {
      const res = await fetch(`${server.url}/api/queues`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { queues: { name: string; readOnlyMode: boolean; allowRetries: boolean }[] };
      expect(body.queues.find((q) => q.name === AGENT_QUEUE)).toMatchObject({
        readOnlyMode: true,
        allowRetries: false,
      });
      const clean = await fetch(`${server.url}/api/queues/${AGENT_QUEUE}/clean/completed`, { method: 'PUT' });
      expect(clean.status).toBe(405);
    } finally {
      await server.close();
      await ro.close();
    }
  });
});

describe('without Redis', () => {
  it('answers 503 on the workers page instead of an error page', async () => {
    // Nothing listens on port 1; the API-role connection fails commands at once.
    const down = createRedis('redis://127.0.0.1:1', 'api', { retryStrategy: () => null });
    down.on('error', () => undefined);
    const d = createDashboard({ connection: down, prefix, login, workerStaleMs: 1_000 });
    const server = await listen(d.app);
    try {
      const res = await fetch(`${server.url}/workers.json`, { headers: good });
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('Redis is not reachable');
      expect((await fetch(`${server.url}/workers.json`)).status).toBe(401);
    } finally {
      await server.close();
      await d.close();
      down.disconnect();
    }
  });
});
