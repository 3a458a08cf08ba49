import { describe, expect, it } from 'vitest';
import { TaskEvent, type TaskAccepted } from '@research/contracts';
import { call, sse, type SseClient } from '@research/testing';
import { AUTH, useApi } from '../../test/api.js';

const api = useApi();

async function submit(prompt = 'stream me'): Promise<string> {
  const res = await call(api.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt } });
  expect(res.status).toBe(202);
  return (res.json as TaskAccepted).id;
}

const now = () => new Date().toISOString();

/** Plays the worker: running, a progress event, a step, then completed. */
async function runToCompletion(id: string): Promise<void> {
  await api.store.lifecycle.start(id, { workerId: 'worker-a', at: now() });
  await api.store.events.append(id, {
    type: 'progress',
    at: now(),
    progress: { step: 1, maxSteps: 40, phase: 'running-step' },
  });
  await api.store.events.append(id, {
    type: 'tool_call',
    at: now(),
    step: 0,
    call: { id: 'call_0', tool: 'daytona-execute', args: { action: 'list-files' } },
  });
  await api.store.events.append(id, { type: 'finished', at: now(), summary: 'done', reason: 'answer' });
  await api.store.lifecycle.transition(id, 'completed', { result: { summary: 'done', files: [] } });
}

const label = (data: string | undefined) => {
  const e = TaskEvent.parse(JSON.parse(data ?? 'null'));
  return e.type === 'status' ? `status:${e.status}` : e.type;
};

/** The label of every message of a stream, once it has closed. */
async function labelsAtEnd(client: SseClient): Promise<string[]> {
  await client.ended;
  return client.messages.map((m) => label(m.data));
}

describe('GET /v1/jobs/:id/events', () => {
  it('replays a finished task in order with ids and types, then closes', async () => {
    const id = await submit();
    await runToCompletion(id);
    const client = await sse(api.port, `/v1/jobs/${id}/events`, AUTH);
    expect(client.status).toBe(200);
    expect(client.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(await labelsAtEnd(client)).toEqual([
      'status:queued',
      'status:running',
      'progress',
      'tool_call',
      'finished',
      'status:completed',
    ]);
    const stored = await api.store.events.read(id);
    expect(client.messages.map((m) => m.id)).toEqual(stored.map((e) => e.id));
    expect(client.messages.map((m) => m.event)).toEqual(stored.map((e) => e.event.type));
  });

  it('streams live events as they happen and closes after the final status', async () => {
    const id = await submit();
    const client = await sse(api.port, `/v1/jobs/${id}/events`, AUTH);
    await client.waitFor(1);
    expect(label(client.messages[0]?.data)).toBe('status:queued');
    await api.store.lifecycle.start(id, { workerId: 'worker-a', at: now() });
    await client.waitFor(2);
    expect(label(client.messages[1]?.data)).toBe('status:running');
    await api.store.events.append(id, { type: 'assistant_message', at: now(), text: 'thinking' });
    await api.store.lifecycle.transition(id, 'failed', { error: { code: 'llm_error', message: 'down' } });
    expect(await labelsAtEnd(client)).toEqual([
      'status:queued',
      'status:running',
      'assistant_message',
      'status:failed',
    ]);
  });

  it('resumes after Last-Event-ID (header or query) without gaps or repeats', async () => {
    const id = await submit();
    await runToCompletion(id);
    const all = await api.store.events.read(id);
    const cut = all[2]!.id;
    const viaHeader = await sse(api.port, `/v1/jobs/${id}/events`, { ...AUTH, 'last-event-id': cut });
    await viaHeader.ended;
    expect(viaHeader.messages.map((m) => m.id)).toEqual(all.slice(3).map((e) => e.id));
    const viaQuery = await sse(api.port, `/v1/jobs/${id}/events?lastEventId=${encodeURIComponent(cut)}`, AUTH);
    await viaQuery.ended;
    expect(viaQuery.messages.map((m) => m.id)).toEqual(all.slice(3).map((e) => e.id));
  });

  it('a client that reconnects mid-task misses nothing', async () => {
    const id = await submit();
    const first = await sse(api.port, `/v1/jobs/${id}/events`, AUTH);
    await api.store.lifecycle.start(id, { workerId: 'worker-a', at: now() });
    await first.waitFor(2);
    first.close();
    const lastSeen = first.messages.at(-1)?.id ?? '';
    // Events written while the client is away.
    await api.store.events.append(id, { type: 'turn', at: now(), turn: 1 });
    const second = await sse(api.port, `/v1/jobs/${id}/events`, { ...AUTH, 'last-event-id': lastSeen });
    await second.waitFor(1);
    await api.store.lifecycle.transition(id, 'completed', { result: { summary: 's', files: [] } });
    await second.ended;
    const seen = [...first.messages, ...second.messages].map((m) => m.id);
    expect(seen).toEqual((await api.store.events.read(id)).map((e) => e.id));
  });

  it('closes at once for a finished task resumed after its last event', async () => {
    const id = await submit();
    await runToCompletion(id);
    const last = (await api.store.events.read(id)).at(-1)!.id;
    const client = await sse(api.port, `/v1/jobs/${id}/events`, { ...AUTH, 'last-event-id': last });
    await client.ended;
    expect(client.messages).toEqual([]);
  });

  it('releases its Redis connection when the client leaves', async () => {
    const id = await submit();
    const before = await clientCount();
    const client = await sse(api.port, `/v1/jobs/${id}/events`, AUTH);
    await client.waitFor(1);
    await waitUntil(async () => (await clientCount()) === before + 1);
    client.close();
    await waitUntil(async () => (await clientCount()) === before);
    expect(await clientCount()).toBe(before);
  });

  it('answers 404 for unknown tasks, 400 for a malformed Last-Event-ID, 401 without a key', async () => {
    expect((await call(api.url, 'GET', '/v1/jobs/unknown-task/events', { headers: AUTH })).status).toBe(404);
    const id = await submit();
    const bad = await call(api.url, 'GET', `/v1/jobs/${id}/events`, {
      headers: { ...AUTH, 'last-event-id': 'garbage' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('invalid_request');
    expect((await call(api.url, 'GET', `/v1/jobs/${id}/events`)).status).toBe(401);
  });
});

/** Connections named by the SSE route (CLIENT LIST shows each connection's name). */
async function clientCount(): Promise<number> {
  const list = (await api.redis.client('LIST')) as string;
  return list.split('\n').filter((l) => l.includes('name=research-api-sse')).length;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
