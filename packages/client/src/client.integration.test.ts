import { describe, expect, it } from 'vitest';
import { OTHER_KEY, playFinish, playStep, useApi } from '../test/api.js';
import {
  type ApiError,
  AuthenticationError,
  ConflictError,
  InvalidRequestError,
  NotFoundError,
  ResearchClient,
  type StreamedEvent,
} from './index.js';

const api = useApi('client');

async function collect(stream: AsyncIterable<StreamedEvent>): Promise<StreamedEvent[]> {
  const out: StreamedEvent[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

describe('ResearchClient against the real API', () => {
  it('submits, reads the task, streams its events, lists and reads its files', async () => {
    const accepted = await api.client.submit({ prompt: 'Research current market conditions', maxSteps: 5 });
    expect(accepted).toMatchObject({ status: 'queued', links: { self: `/v1/jobs/${accepted.id}` } });
    expect(await api.client.get(accepted.id)).toMatchObject({ id: accepted.id, status: 'queued', tenant: 'acme' });

    await api.store.lifecycle.start(accepted.id, { workerId: 'worker-client' });
    await playStep(api.store, accepted.id, 0, 'python3 analysis.py');
    await playFinish(api.store, accepted.id);

    const events = await collect(api.client.events(accepted.id));
    expect(events.map((e) => e.event.type)).toEqual([
      'status',
      'status',
      'tool_call',
      'tool_result',
      'finished',
      'status',
    ]);
    expect(events.at(-1)?.event).toMatchObject({ type: 'status', status: 'completed' });
    // Resuming after the second event yields exactly the rest.
    const rest = await collect(api.client.events(accepted.id, { lastEventId: events[1]!.id }));
    expect(rest.map((e) => e.id)).toEqual(events.slice(2).map((e) => e.id));
    // After the final event there is nothing more: the API answers 204 and the iterator just ends.
    expect(await collect(api.client.events(accepted.id, { lastEventId: events.at(-1)!.id }))).toEqual([]);

    expect(await api.client.files(accepted.id)).toEqual([{ path: 'report.md', size: 26 }]);
    expect((await api.client.file(accepted.id, 'report.md')).toString()).toBe('# Report\n\nMarkets are up.\n');
    expect((await api.client.get(accepted.id)).result?.files).toEqual([{ path: 'report.md', size: 26 }]);
  });

  it('answers a repeat with the same idempotency key with the same task', async () => {
    const first = await api.client.submit({ prompt: 'once' }, { idempotencyKey: 'client-test-once' });
    const again = await api.client.submit({ prompt: 'once' }, { idempotencyKey: 'client-test-once' });
    expect(again.id).toBe(first.id);
    const reused = await api.client.submit({ prompt: 'twice' }, { idempotencyKey: 'client-test-once' }).catch((e) => e);
    expect(reused).toBeInstanceOf(ConflictError);
    expect(reused).toMatchObject({ status: 409, code: 'idempotency_key_reused', details: { id: first.id } });
  });

  it('cancels a queued task, and a second cancel is a 409 naming the status', async () => {
    const { id } = await api.client.submit({ prompt: 'cancel me' });
    const view = await api.client.cancel(id);
    expect(view).toMatchObject({ id, status: 'cancelled' });
    const again = await api.client.cancel(id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(ConflictError);
    expect(again).toMatchObject({ status: 409, code: 'already_finished', details: { status: 'cancelled' } });
  });

  it('surfaces the API errors as typed errors with status, code and message', async () => {
    const invalid = await api.client.submit({ prompt: '' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(InvalidRequestError);
    expect(invalid).toMatchObject({ status: 400, code: 'invalid_request' });
    expect((invalid as ApiError).message).toContain('prompt');

    const wrongKey = new ResearchClient({ baseUrl: api.url, apiKey: 'not-a-key-of-this-api' });
    const unauthorized = await wrongKey.get('anything').catch((e: unknown) => e);
    expect(unauthorized).toBeInstanceOf(AuthenticationError);
    expect(unauthorized).toMatchObject({ status: 401, name: 'AuthenticationError' });

    const missing = await api.client.get('no-such-task').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });

    const missingFile = await api.client.file('no-such-task', 'report.md').catch((e: unknown) => e);
    expect(missingFile).toBeInstanceOf(NotFoundError);
  });

  it("sees another tenant's task as missing on every route", async () => {
    const { id } = await api.client.submit({ prompt: 'acme only' });
    const beta = new ResearchClient({ baseUrl: api.url, apiKey: OTHER_KEY });
    const attempts: Promise<unknown>[] = [
      beta.get(id),
      beta.cancel(id),
      beta.files(id),
      beta.file(id, 'report.md'),
      collect(beta.events(id)),
    ];
    for (const result of await Promise.allSettled(attempts)) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(NotFoundError);
    }
    expect((await api.client.get(id)).status).toBe('queued');
  });

  it('reads health, readiness, metrics and the OpenAPI document', async () => {
    expect(await api.client.health()).toEqual({ ok: true });
    expect(await api.client.ready()).toEqual({ ok: true });
    expect(await api.client.metrics()).toMatch(/^# HELP /m);
    const doc = await api.client.openApi();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths as object)).toContain('/v1/jobs');
  });
});
