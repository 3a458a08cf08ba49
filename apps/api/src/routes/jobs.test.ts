import { describe, expect, it } from 'vitest';
import { ApiErrorBody, TaskAccepted, TaskView } from '@research/contracts';
import { Worker } from 'bullmq';
import { AGENT_QUEUE, createRedis } from '@research/queue';
import { REDIS_URL, call, cleanPrefix, raw, testPrefix } from '@research/testing';
import { AUTH, KEY, OTHER_KEY, startApi, useApi } from '../../test/api.js';

const api = useApi();

const post = (body: unknown, headers: Record<string, string> = AUTH) =>
  call(api.url, 'POST', '/v1/jobs', { headers, body });

function expectError(res: { status: number; json: unknown }, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = ApiErrorBody.parse(res.json);
  expect(body.error.code).toBe(code);
  expect(JSON.stringify(body)).not.toMatch(/at .*\.(js|ts):\d+/);
  return body;
}

describe('auth', () => {
  it('refuses /v1 without a key, with a wrong key, or with another scheme', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: 'Bearer nope' },
      { authorization: `Basic ${KEY}` },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${KEY}x` },
    ]) {
      const res = await call(api.url, 'GET', '/v1/jobs/abc', { headers });
      expectError(res, 401, 'unauthorized');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });

  it('checks the key before reading the body', async () => {
    const res = await post('x'.repeat(100_000), {});
    expectError(res, 401, 'unauthorized');
  });

  it('accepts every configured key', async () => {
    for (const key of [KEY, OTHER_KEY]) {
      const res = await post({ prompt: 'hello' }, { authorization: `Bearer ${key}` });
      expect(res.status).toBe(202);
    }
  });
});

describe('POST /v1/jobs', () => {
  it('queues the task as a BullMQ job and answers 202 with links', async () => {
    const res = await post({ prompt: 'Research current market conditions', maxSteps: 7, metadata: { team: 'a' } });
    expect(res.status).toBe(202);
    const accepted = TaskAccepted.parse(res.json);
    expect(accepted.status).toBe('queued');
    expect(accepted.links.self).toBe(`/v1/jobs/${accepted.id}`);
    expect(res.headers.get('location')).toBe(accepted.links.self);

    const job = await api.queue.getJob(accepted.id);
    expect(job?.data).toMatchObject({
      taskId: accepted.id,
      request: { prompt: 'Research current market conditions', maxSteps: 7 },
      createdAt: accepted.createdAt,
    });
    expect(job?.opts.attempts).toBeGreaterThanOrEqual(3);
    // Every task job has a priority (see bullmqPriority), so a queued one is `prioritized`.
    expect(await job?.getState()).toBe('prioritized');

    const view = await call(api.url, 'GET', accepted.links.self, { headers: AUTH });
    expect(view.status).toBe(200);
    expect(TaskView.parse(view.json)).toMatchObject({
      id: accepted.id,
      status: 'queued',
      progress: { step: 0, maxSteps: 7, phase: 'queued' },
      steps: [],
      metadata: { team: 'a' },
    });
  });

  it('defaults maxSteps to TASK_MAX_STEPS', async () => {
    const res = await post({ prompt: 'p' });
    const view = await call(api.url, 'GET', `/v1/jobs/${(res.json as TaskAccepted).id}`, { headers: AUTH });
    expect(view.json.progress.maxSteps).toBe(api.env.TASK_MAX_STEPS);
  });

  it.each([
    ['missing prompt', {}, 'prompt'],
    ['prompt of the wrong type', { prompt: 42 }, 'prompt'],
    ['empty prompt', { prompt: '   ' }, 'prompt'],
    ['maxSteps of the wrong type', { prompt: 'p', maxSteps: '5' }, 'maxSteps'],
    ['maxSteps too big', { prompt: 'p', maxSteps: 10_000 }, 'maxSteps'],
    ['negative timeout', { prompt: 'p', timeoutSeconds: -1 }, 'timeoutSeconds'],
    ['extra keys', { prompt: 'p', admin: true }, '(root)'],
    ['NUL in the prompt', { prompt: 'a\u0000b' }, 'prompt'],
    ['__proto__ at the top', JSON.parse('{"prompt":"p","__proto__":{"polluted":true}}'), '(root)'],
    ['constructor in metadata', { prompt: 'p', metadata: { constructor: 'x' } }, 'metadata'],
    ['nested metadata', { prompt: 'p', metadata: { a: { b: 1 } } }, 'metadata.a'],
    ['an array', [{ prompt: 'p' }], '(root)'],
  ])('refuses %s with 400 invalid_request and readable issues', async (_name, body, path) => {
    const res = await post(body);
    const err = expectError(res, 400, 'invalid_request');
    const issues = (err.error.details as { issues: { path: string; message: string }[] }).issues;
    expect(issues.map((i) => i.path)).toContain(path);
    expect(issues.every((i) => typeof i.message === 'string' && i.message.length > 0)).toBe(true);
  });

  it('refuses __proto__ in metadata instead of silently dropping it, and pollutes nothing', async () => {
    for (const text of [
      '{"prompt":"p","metadata":{"__proto__":"x"}}',
      '{"prompt":"p","metadata":{"__proto__":{"polluted":true}}}',
      '{"prompt":"p","__proto__":{"polluted":true}}',
    ]) {
      const res = await call(api.url, 'POST', '/v1/jobs', {
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: text,
      });
      expectError(res, 400, 'invalid_request');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('answers 400 invalid_json for malformed JSON', async () => {
    for (const text of ['{"prompt":', 'nope', '{"prompt":"p"}}', '"just a string"', 'null']) {
      const res = await call(api.url, 'POST', '/v1/jobs', {
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: text,
      });
      expectError(res, 400, 'invalid_json');
    }
  });

  it('answers 413 for bodies over MAX_BODY_BYTES', async () => {
    const res = await post({ prompt: 'x'.repeat(api.env.MAX_BODY_BYTES + 10) });
    expectError(res, 413, 'payload_too_large');
  });

  it('answers 415 for other content types', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await raw(api.port, 'POST', '/v1/jobs', { ...AUTH, 'content-type': type }, 'prompt=x');
      expect(res.status).toBe(415);
      expect(ApiErrorBody.parse(res.json()).error.code).toBe('unsupported_media_type');
    }
  });

  it('survives deep and wide JSON with a 4xx', async () => {
    const deep = `{"prompt":${'['.repeat(7_000)}${']'.repeat(7_000)}}`;
    const wide = JSON.stringify({
      prompt: 'p',
      metadata: Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`k${i}`, i])),
    });
    for (const body of [deep, wide]) {
      const res = await call(api.url, 'POST', '/v1/jobs', {
        headers: { ...AUTH, 'content-type': 'application/json' },
        body,
      });
      expect(res.status).toBe(400);
      ApiErrorBody.parse(res.json);
    }
  });
});

describe('Idempotency-Key', () => {
  it('returns the same task for a repeat and enqueues once', async () => {
    const headers = { ...AUTH, 'idempotency-key': `order-${Date.now()}:1` };
    const a = await post({ prompt: 'once' }, headers);
    const b = await post({ prompt: 'once' }, headers);
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.json.id).toBe(a.json.id);
    expect(b.json.createdAt).toBe(a.json.createdAt);
    const counts = await api.queue.getJobs(['prioritized']);
    expect(counts.filter((j) => j.data.request.prompt === 'once')).toHaveLength(1);
  });

  it('refuses the same key for a different request with 409, naming the first task', async () => {
    const headers = { ...AUTH, 'idempotency-key': `reuse-${Date.now()}` };
    const a = await post({ prompt: 'first' }, headers);
    const b = await post({ prompt: 'second' }, headers);
    expect(a.status).toBe(202);
    expect(b.status).toBe(409);
    const body = ApiErrorBody.parse(b.json);
    expect(body.error.code).toBe('idempotency_key_reused');
    expect(body.error.details).toEqual({ id: a.json.id });
  });

  it('is scoped per API key', async () => {
    const key = `shared-${Date.now()}`;
    const a = await post({ prompt: 'scoped' }, { authorization: `Bearer ${KEY}`, 'idempotency-key': key });
    const b = await post({ prompt: 'scoped' }, { authorization: `Bearer ${OTHER_KEY}`, 'idempotency-key': key });
    expect(a.json.id).not.toBe(b.json.id);
  });

  it.each(['', 'has space', 'x'.repeat(129), 'semi;colon', 'ümlaut', 'a/b'])(
    'refuses the key %j with 400',
    async (key) => {
      const res = await raw(
        api.port,
        'POST',
        '/v1/jobs',
        { ...AUTH, 'content-type': 'application/json', 'idempotency-key': key },
        '{"prompt":"p"}',
      );
      expect(res.status).toBe(400);
      expect(ApiErrorBody.parse(res.json()).error.code).toBe('invalid_request');
    },
  );
});

describe('GET /v1/jobs/:id', () => {
  it('answers 404 for unknown and malformed ids', async () => {
    for (const id of [
      '00000000-0000-0000-0000-000000000000',
      'x'.repeat(129),
      'a%20b',
      'a.b',
      '%00',
      '..%2f..%2fetc',
    ]) {
      const res = await raw(api.port, 'GET', `/v1/jobs/${id}`, AUTH);
      expect(res.status).toBe(404);
      expect(ApiErrorBody.parse(res.json()).error.code).toBe('not_found');
    }
  });

  it('shows what the worker wrote: running, steps, result', async () => {
    const { json } = await post({ prompt: 'view me' });
    const id = (json as TaskAccepted).id;
    await api.store.lifecycle.start(id, { workerId: 'worker-a' });
    await api.store.steps.set(id, {
      index: 0,
      action: 'create-file',
      status: 'completed',
      attempts: 1,
      durationMs: 12,
    });
    await api.store.records.setProgress(id, { step: 1, maxSteps: 40, phase: 'thinking' });
    let view = TaskView.parse((await call(api.url, 'GET', `/v1/jobs/${id}`, { headers: AUTH })).json);
    expect(view).toMatchObject({
      status: 'running',
      workerId: 'worker-a',
      progress: { step: 1, phase: 'thinking' },
      steps: [{ index: 0, action: 'create-file', status: 'completed' }],
    });
    expect(view.startedAt).toBeDefined();
    await api.store.lifecycle.transition(id, 'completed', {
      result: { summary: 'done', files: [{ path: 'report.md', size: 2 }] },
    });
    view = TaskView.parse((await call(api.url, 'GET', `/v1/jobs/${id}`, { headers: AUTH })).json);
    expect(view.status).toBe('completed');
    expect(view.result?.files).toEqual([{ path: 'report.md', size: 2 }]);
    expect(view.finishedAt).toBeDefined();
  });
});

describe('POST /v1/jobs/:id/cancel', () => {
  it('removes a queued job from the queue and marks it cancelled', async () => {
    const { json } = await post({ prompt: 'cancel me' });
    const id = (json as TaskAccepted).id;
    expect(await api.queue.getJobState(id)).toBe('prioritized');
    const res = await call(api.url, 'POST', `/v1/jobs/${id}/cancel`, { headers: AUTH });
    expect(res.status).toBe(202);
    expect(TaskView.parse(res.json).status).toBe('cancelled');
    expect(await api.queue.getJob(id)).toBeUndefined();
    const events = await api.store.events.read(id);
    expect(events.at(-1)?.event).toMatchObject({ type: 'status', status: 'cancelled' });
  });

  it('flags a running task for its worker (the job stays where it is)', async () => {
    // A prefix of its own, so the worker role below takes exactly this task's job.
    const prefix2 = testPrefix('apitest');
    const api2 = await startApi({ prefix: prefix2 });
    const workerConnection = createRedis(REDIS_URL, 'worker');
    const worker = new Worker(AGENT_QUEUE, null, { connection: workerConnection, prefix: prefix2, autorun: false });
    const subscriber = createRedis(REDIS_URL, 'worker');
    try {
      const { json } = await call(api2.url, 'POST', '/v1/jobs', { headers: AUTH, body: { prompt: 'sleep 300' } });
      const id = (json as TaskAccepted).id;
      const job = await worker.getNextJob('test-token');
      expect(job?.id).toBe(id);
      await api2.store.lifecycle.start(id, { workerId: 'worker-a' });
      let announce: (taskId: string) => void = () => undefined;
      const published = new Promise<string>((resolve) => {
        announce = resolve;
      });
      await api2.store.cancels.subscribe(subscriber, (taskId) => announce(taskId));

      const res = await call(api2.url, 'POST', `/v1/jobs/${id}/cancel`, { headers: AUTH });
      expect(res.status).toBe(202);
      expect(TaskView.parse(res.json).status).toBe('running');
      expect(await published).toBe(id);
      expect(await api2.store.cancels.isRequested(id)).toBe(true);
      expect(await api2.queue.getJobState(id)).toBe('active');
    } finally {
      await worker.close(true);
      workerConnection.disconnect();
      subscriber.disconnect();
      await api2.close();
      await cleanPrefix(prefix2);
    }
  });

  it('answers 409 already_finished for a finished task, 404 for an unknown one', async () => {
    const { json } = await post({ prompt: 'finished' });
    const id = (json as TaskAccepted).id;
    await api.store.lifecycle.start(id, { workerId: 'worker-a' });
    await api.store.lifecycle.transition(id, 'completed', { result: { summary: 's', files: [] } });
    expectError(await call(api.url, 'POST', `/v1/jobs/${id}/cancel`, { headers: AUTH }), 409, 'already_finished');
    expectError(await call(api.url, 'POST', '/v1/jobs/nope/cancel', { headers: AUTH }), 404, 'not_found');
  });

  it('answers 405 for other methods', async () => {
    const res = await call(api.url, 'GET', '/v1/jobs/abc/cancel', { headers: AUTH });
    expectError(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toBe('POST');
  });
});

describe('unknown routes', () => {
  it('answer 404 with the error shape', async () => {
    expectError(await call(api.url, 'GET', '/nope'), 404, 'not_found');
    expectError(await call(api.url, 'GET', '/v1/nope', { headers: AUTH }), 404, 'not_found');
  });
});
