import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Queue } from 'bullmq';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookDeliveries, WebhookPayload } from '@research/contracts';
import { WEBHOOK_QUEUE, queueOptions } from '@research/queue';
import { listen, type Listening, replayPrompt, requireServices, System } from '@research/testing';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
/** The receiver's side: the specification's own library, which checks the signature and the timestamp. */
const verifier = new Webhook(secret);

interface Received {
  path: string;
  headers: Record<string, string>;
  /** The verified payload; undefined when verification failed. */
  payload?: WebhookPayload;
  verifyError?: string;
}

let sys: System;
let receiver: Listening;
/** Listens on a port no EGRESS_ALLOW_HOSTS entry names: a delivery there must never connect. */
let forbidden: Listening;
let forbiddenConnections = 0;
const received: Received[] = [];
/** Failures still to answer, by path. */
const failuresLeft = new Map<string, number>([['/flaky', 2]]);

function receive(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    const entry: Received = { path: req.url ?? '', headers };
    try {
      entry.payload = verifier.verify(body, headers) as WebhookPayload;
    } catch (err) {
      entry.verifyError = (err as Error).message;
    }
    received.push(entry);
    const left = failuresLeft.get(entry.path) ?? 0;
    if (entry.verifyError) res.writeHead(401).end('bad signature');
    else if (left > 0) {
      failuresLeft.set(entry.path, left - 1);
      res.writeHead(503).end('busy, try later');
    } else res.writeHead(204).end();
  });
}

beforeAll(async () => {
  await requireServices();
  receiver = await listen(receive);
  forbidden = await listen((_req, res) => res.end());
  forbidden.server.on('connection', () => forbiddenConnections++);
  sys = new System({
    tag: 'hooks',
    env: {
      WEBHOOK_SECRET: secret,
      // Loopback is refused by default: only the receiver's port is let through.
      EGRESS_ALLOW_HOSTS: `127.0.0.1:${receiver.port}`,
      TENANT_WEBHOOK_URLS: `default=${receiver.url}/tenant-default`,
      WEBHOOK_BACKOFF_MS: '100',
      WEBHOOK_ATTEMPTS: '5',
    },
  });
  await Promise.all([sys.startApi(), sys.startWorkers(1)]);
});

afterAll(async () => {
  await sys?.close();
  await receiver?.close();
  await forbidden?.close();
});

async function deliveries(id: string, done: (d: WebhookDeliveries) => boolean): Promise<WebhookDeliveries> {
  let last: WebhookDeliveries | undefined;
  await expect
    .poll(
      async () => {
        const res = await sys.request(`/v1/jobs/${id}/webhooks`);
        expect(res.status).toBe(200);
        last = (await res.json()) as WebhookDeliveries;
        return done(last);
      },
      { timeout: 60_000, interval: 200 },
    )
    .toBe(true);
  return last as WebhookDeliveries;
}

describe('webhooks', () => {
  it('delivers a signed final status on the third attempt after two failures, each attempt recorded', async () => {
    const id = await sys.submit({ prompt: replayPrompt(['echo hi']), webhook: { url: `${receiver.url}/flaky` } });
    expect((await sys.waitFinal(id)).status).toBe('completed');
    const got = await deliveries(id, (d) => d.deliveries[0]?.status === 'delivered');

    expect(got.webhook).toEqual({ url: `${receiver.url}/flaky` });
    expect(got.deliveries).toHaveLength(1);
    const [delivery] = got.deliveries;
    expect(delivery).toMatchObject({ event: 'final', type: 'task.completed', status: 'delivered' });
    expect(delivery?.attempts.map((a) => [a.attempt, a.outcome, a.statusCode])).toEqual([
      [1, 'retrying', 503],
      [2, 'retrying', 503],
      [3, 'delivered', 204],
    ]);
    expect(delivery?.attempts[0]?.error?.code).toBe('http_error');

    const mine = received.filter((r) => r.path === '/flaky');
    expect(mine).toHaveLength(3);
    for (const r of mine) {
      expect(r.verifyError).toBeUndefined();
      // One message, three tries: the same webhook-id each time, so a receiver can drop repeats.
      expect(r.headers['webhook-id']).toBe(delivery?.id);
      expect(r.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    }
    expect(mine[2]?.payload).toMatchObject({ type: 'task.completed', data: { id, status: 'completed' } });
    expect(mine[2]?.payload?.data.result?.summary).toBeTruthy();

    // The attempts are in the task's events too (after its final status).
    const events = (await sys.store.events.read(id)).map((e) => e.event);
    expect(events.filter((e) => e.type === 'webhook').map((e) => (e as { outcome: string }).outcome)).toEqual([
      'retrying',
      'retrying',
      'delivered',
    ]);
    // And in the delivery job's log, which Bull Board shows.
    const queue = new Queue(WEBHOOK_QUEUE, queueOptions(sys.redis, sys.prefix));
    try {
      const { logs } = await queue.getJobLogs(delivery!.id);
      expect(logs.map((l) => l.replace(/ in \d+ ms$/, ''))).toEqual([
        'attempt 1: retrying HTTP 503, http_error',
        'attempt 2: retrying HTTP 503, http_error',
        'attempt 3: delivered HTTP 204',
      ]);
    } finally {
      await queue.close();
    }
  });

  it("sends a task without a webhook of its own to its tenant's default, with progress when asked", async () => {
    const plain = await sys.submit({ prompt: replayPrompt(['echo one']) });
    const withProgress = await sys.submit({
      prompt: replayPrompt(['echo one', 'echo two']),
      webhook: { url: `${receiver.url}/progress`, events: ['progress', 'final'] },
    });
    await Promise.all([sys.waitFinal(plain), sys.waitFinal(withProgress)]);

    const d1 = await deliveries(plain, (d) => d.deliveries[0]?.status === 'delivered');
    expect(d1.webhook).toEqual({ url: `${receiver.url}/tenant-default` });
    expect(received.find((r) => r.path === '/tenant-default')?.payload?.data.id).toBe(plain);

    const d2 = await deliveries(
      withProgress,
      (d) => d.deliveries.length === 3 && d.deliveries.every((x) => x.status === 'delivered'),
    );
    expect(d2.deliveries.map((d) => d.type).sort()).toEqual(['task.completed', 'task.progress', 'task.progress']);
    const steps = received
      .filter((r) => r.path === '/progress' && r.payload?.type === 'task.progress')
      .map((r) => r.payload?.data.step?.index)
      .sort();
    expect(steps).toEqual([0, 1]);
  });

  it('refuses a destination the egress policy does not allow, without opening a connection', async () => {
    const id = await sys.submit({ prompt: replayPrompt(['echo hi']), webhook: { url: `${forbidden.url}/hook` } });
    await sys.waitFinal(id);
    const got = await deliveries(id, (d) => d.deliveries[0]?.status === 'failed');
    expect(got.deliveries[0]?.attempts).toHaveLength(1);
    expect(got.deliveries[0]?.attempts[0]).toMatchObject({ outcome: 'failed', error: { code: 'egress_denied' } });
    expect(forbiddenConnections).toBe(0);
  });

  it('answers 404 for an unknown task and 405 for other methods', async () => {
    const res = await sys.request('/v1/jobs/no-such-task/webhooks');
    expect(res.status).toBe(404);
    const id = await sys.submit({ prompt: replayPrompt(['echo hi']) });
    expect((await sys.request(`/v1/jobs/${id}/webhooks`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses a webhook URL that is not http(s), naming the field', async () => {
    const res = await sys.request('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({ prompt: 'x', webhook: { url: 'file:///etc/passwd' } }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('webhook.url');
  });
});
