import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ApiErrorBody, type TaskAccepted, WebhookDeliveries } from '@research/contracts';
import { call } from '@research/testing';
import { AUTH, OTHER_KEY, useApi } from '../test/api.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;

describe('webhooks at the API, without WEBHOOK_SECRET', () => {
  const api = useApi();

  it('refuses a task with a webhook (nothing is sent unsigned) and creates nothing', async () => {
    const res = await call(api.url, 'POST', '/v1/jobs', {
      headers: AUTH,
      body: { prompt: 'x', webhook: { url: 'https://hooks.example.com/h' } },
    });
    expect(res.status).toBe(400);
    expect(ApiErrorBody.parse(res.json).error).toMatchObject({ code: 'webhooks_disabled' });
    expect(await api.redis.keys(`${api.prefix}:task:*`)).toEqual([]);
  });
});

describe('webhooks at the API, with WEBHOOK_SECRET and a tenant default', () => {
  const api = useApi({
    env: { WEBHOOK_SECRET: secret, TENANT_WEBHOOK_URLS: 'other=https://hooks.other.example/research' },
  });

  const submit = async (key: string, body: Record<string, unknown>) => {
    const res = await call(api.url, 'POST', '/v1/jobs', { headers: { authorization: `Bearer ${key}` }, body });
    expect(res.status).toBe(202);
    return (res.json as TaskAccepted).id;
  };
  const deliveries = async (key: string, id: string) =>
    call(api.url, 'GET', `/v1/jobs/${id}/webhooks`, { headers: { authorization: `Bearer ${key}` } });

  it("keeps the task's own webhook, or its tenant's default, or none", async () => {
    const own = await submit(OTHER_KEY, {
      prompt: 'x',
      webhook: { url: 'https://mine.example/h', events: ['final', 'progress'] },
    });
    const byDefault = await submit(OTHER_KEY, { prompt: 'x' });
    const none = await submit(AUTH.authorization.slice('Bearer '.length), { prompt: 'x' });

    const a = WebhookDeliveries.parse((await deliveries(OTHER_KEY, own)).json);
    expect(a).toEqual({ webhook: { url: 'https://mine.example/h', events: ['final', 'progress'] }, deliveries: [] });
    const b = WebhookDeliveries.parse((await deliveries(OTHER_KEY, byDefault)).json);
    expect(b).toEqual({ webhook: { url: 'https://hooks.other.example/research' }, deliveries: [] });
    const c = await call(api.url, 'GET', `/v1/jobs/${none}/webhooks`, { headers: AUTH });
    expect(c.json).toEqual({ deliveries: [] });
    // Another tenant's task: 404, as for one that does not exist.
    expect((await deliveries(OTHER_KEY, none)).status).toBe(404);
  });

  it('queues the delivery of a final status set at the API (a cancel before the start)', async () => {
    const id = await submit(OTHER_KEY, { prompt: 'x' });
    const res = await call(api.url, 'POST', `/v1/jobs/${id}/cancel`, {
      headers: { authorization: `Bearer ${OTHER_KEY}` },
    });
    expect(res.status).toBe(202);
    const got = WebhookDeliveries.parse((await deliveries(OTHER_KEY, id)).json);
    expect(got.deliveries).toEqual([
      expect.objectContaining({ id: `${id}-cancelled`, type: 'task.cancelled', status: 'queued', attempts: [] }),
    ]);
  });

  it('refuses a webhook that is not an http(s) URL or asks for an unknown event, naming the field', async () => {
    for (const webhook of [
      { url: 'ftp://x.example/h' },
      { url: 'https://x.example', events: ['sometimes'] },
      { url: 'https://x.example', extra: 1 },
    ]) {
      const res = await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'x', webhook } });
      expect(res.status, JSON.stringify(webhook)).toBe(400);
      expect(JSON.stringify(res.json)).toContain('webhook');
    }
  });
});
