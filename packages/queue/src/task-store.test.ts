import type { StepOutcome } from '@research/contracts';
import { describe, expect, it } from 'vitest';
import { Queue, Worker } from 'bullmq';
import type { NewTask } from './store/lifecycle.js';
import { TaskStore } from './task-store.js';
import { useRedis } from './testing/redis.js';
import { WorkerRegistry } from './workers.js';
import { AGENT_QUEUE, stepJobId, stepQueueName } from './names.js';
import { JOBS, QUEUE_EVENTS_MAX_LEN, TaskJobData, jobOptions, queueOptions, stepJobResult } from './catalog.js';

const db = useRedis('test');
const { redis, prefix } = db;
const store = new TaskStore(redis, prefix, { retentionSeconds: 60 });

/** Creates task `id` now, with prompt `p` and 5 steps unless `fields` say otherwise. */
const create = (id: string, fields: Partial<NewTask> = {}) =>
  store.lifecycle.create({ id, request: { prompt: 'p' }, createdAt: new Date().toISOString(), maxSteps: 5, ...fields });

describe('TaskStore', () => {
  it('creates a task once per idempotency key and shows it as queued', async () => {
    const now = new Date().toISOString();
    const withKey = (id: string, prompt: string) =>
      create(id, { request: { prompt }, createdAt: now, maxSteps: 10, idempotencyHash: 'k1' });
    const a = await withKey('t1', 'hello');
    const b = await withKey('t2', 'hello');
    expect(a).toEqual({ id: 't1', created: true, sameRequest: true });
    expect(b).toEqual({ id: 't1', created: false, sameRequest: true });
    const c = await withKey('t2', 'something else');
    expect(c).toEqual({ id: 't1', created: false, sameRequest: false });
    expect(await store.records.exists('t2')).toBe(false);
    const view = await store.records.view('t1');
    expect(view).toMatchObject({
      id: 't1',
      status: 'queued',
      prompt: 'hello',
      progress: { step: 0, maxSteps: 10, phase: 'queued' },
      steps: [],
    });
  });

  it('keeps status, steps, result and events in order, and expires finished tasks', async () => {
    const now = new Date().toISOString();
    await create('t3', { request: { prompt: 'p', metadata: { team: 'a' } }, createdAt: now });
    expect(await store.lifecycle.start('t3', { workerId: 'w1', at: now })).toEqual({
      ok: true,
      status: 'running',
      startedAt: now,
    });
    const again = await store.lifecycle.start('t3', { workerId: 'w2', at: new Date(Date.now() + 1000).toISOString() });
    expect(again).toMatchObject({ ok: true, startedAt: now });
    await store.steps.set('t3', {
      index: 1,
      action: 'read-file',
      status: 'completed',
      attempts: 1,
      durationMs: 2,
      queue: 'steps.w2',
    });
    await store.steps.set('t3', {
      index: 0,
      action: 'execute-command',
      status: 'completed',
      attempts: 2,
      exitCode: 0,
      durationMs: 5,
    });
    await store.lifecycle.transition('t3', 'completed', {
      result: { summary: 'done', files: [{ path: 'report.md', size: 3 }] },
    });
    const view = await store.records.view('t3');
    expect(view?.status).toBe('completed');
    expect(view?.workerId).toBe('w2');
    expect(view?.steps.map((s) => s.index)).toEqual([0, 1]);
    expect(view?.steps[1]).not.toHaveProperty('queue');
    expect(view?.result?.files).toEqual([{ path: 'report.md', size: 3 }]);
    expect(view?.metadata).toEqual({ team: 'a' });
    const events = await store.events.read('t3');
    expect(events.map((e) => (e.event.type === 'status' ? e.event.status : e.event.type))).toEqual([
      'queued',
      'running',
      'running',
      'completed',
    ]);
    const after = await store.events.read('t3', events[1]!.id);
    expect(after).toHaveLength(2);
    const ttl = await redis.ttl(`${prefix}:task:t3`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('keeps a finished step with its outcome, for as long as the task', async () => {
    await create('t7');
    expect(await store.steps.outcome('t7', 0)).toBeUndefined();
    const outcome: StepOutcome = {
      ok: true,
      result: {
        action: 'execute-command',
        exitCode: 0,
        stdout: 'hi\n',
        stderr: '',
        timedOut: false,
        truncated: false,
        durationMs: 3,
      },
    };
    await store.steps.complete(
      't7',
      { index: 0, action: 'execute-command', status: 'completed', attempts: 1, exitCode: 0, queue: 'steps.w1' },
      outcome,
    );
    expect(await store.steps.outcome('t7', 0)).toEqual(outcome);
    await store.steps.complete(
      't7',
      { index: 1, action: 'execute-command', status: 'completed', attempts: 1, exitCode: 0 },
      outcome,
    );
    expect(await store.steps.outcome('t7', 1)).toEqual(outcome);
    expect(await store.steps.get('t7', 0)).toMatchObject({ status: 'completed', queue: 'steps.w1' });
    // The view shows the step, not its outcome.
    expect((await store.records.view('t7'))?.steps[0]).toEqual({
      index: 0,
      action: 'execute-command',
      status: 'completed',
      attempts: 1,
      exitCode: 0,
    });
    await store.lifecycle.start('t7', { workerId: 'w1' });
    await store.lifecycle.transition('t7', 'completed', { result: { summary: 's', files: [] } });
    const ttl = await redis.ttl(`${prefix}:task:t7:outcomes`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it("on a connection that sends calls in batches (the worker's), keeps a step's writes in the order they were made", async () => {
    const batching = db.connection({ autoPipelining: true });
    const batched = new TaskStore(batching, prefix, { retentionSeconds: 60 });
    await create('t8');
    const before = await store.stats.stepHistogram();
    const step = { index: 0, action: 'execute-command', attempts: 1, queue: 'steps.w1' } as const;
    const outcome: StepOutcome = { ok: false, error: { code: 'internal', message: 'x' } };
    // As the step executor does: the running record is not waited for, its completion is.
    void batched.steps.set('t8', { ...step, status: 'running' });
    void batched.records.setProgress('t8', { step: 1, maxSteps: 5, phase: 'running-step' });
    // Both wait for the next turn of the event loop, to go out together.
    expect(batching.autoPipelineQueueSize).toBe(2);
    await batched.steps.complete('t8', { ...step, status: 'completed', durationMs: 30 }, outcome);
    expect(await store.steps.get('t8', 0)).toMatchObject({ status: 'completed', durationMs: 30 });
    expect(await store.steps.outcome('t8', 0)).toEqual(outcome);
    const after = await store.stats.stepHistogram();
    expect(after.count).toBe(before.count + 1);
    expect(after.buckets.find((b) => b.le === 0.05)?.count).toBe(
      (before.buckets.find((b) => b.le === 0.05)?.count ?? 0) + 1,
    );
    // Counted against the task's Redis bytes: the outcome as stored.
    expect(Number(await redis.hget(`${prefix}:task:t8`, 'redisBytes'))).toBe(JSON.stringify(outcome).length);
  });

  it("keeps a submit's input files beside the record until they are dropped, and expires them with the task", async () => {
    const files = [
      { path: 'data/in.csv', content: 'a,b\n1,2\n', encoding: 'utf8' as const },
      { path: 'blob.bin', content: 'AAEC', encoding: 'base64' as const },
    ];
    await create('in1', { request: { prompt: 'p', files } });
    const raw = await redis.hget(`${prefix}:task:in1`, 'request');
    expect(JSON.parse(raw ?? '{}')).toEqual({ prompt: 'p' });
    expect(await store.inputs.load('in1')).toEqual(files);
    await store.inputs.drop('in1');
    expect(await store.inputs.load('in1')).toBeUndefined();

    await create('in2', { request: { prompt: 'p', files } });
    await store.lifecycle.transition('in2', 'cancelled', { error: { code: 'cancelled', message: 'x' } });
    const ttl = await redis.ttl(`${prefix}:task:in2:inputs`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it("counts a task's web budget in Redis, shared by every counter of the task", async () => {
    const a = store.web.counter('w1');
    const b = store.web.counter('w1');
    expect(await a.increment('fetches', 1)).toBe(1);
    expect(await b.increment('fetches', 1)).toBe(2);
    expect(await b.increment('bytes', 500)).toBe(500);
    expect(await store.web.counter('w2').increment('fetches', 0)).toBe(0);
    expect(await store.web.used('w1')).toEqual({ fetches: 2, bytes: 500 });
    expect(await redis.ttl(`${prefix}:task:w1:web`)).toBeGreaterThan(0);
  });

  it('waits for new events on a blocking connection', async () => {
    const now = new Date().toISOString();
    await create('t4', { createdAt: now });
    const [first] = await store.events.read('t4');
    const blocking = redis.duplicate();
    const waiting = store.events.wait(blocking, 't4', first!.id, 5_000);
    await store.events.append('t4', { type: 'turn', at: now, turn: 1 });
    const got = await waiting;
    expect(got.map((e) => e.event.type)).toEqual(['turn']);
    await blocking.quit();
  });

  it('stores files by exact path only', async () => {
    await create('t5');
    await store.files.save('t5', [
      { path: 'report.md', size: 5, content: Buffer.from('hello') },
      { path: 'big.bin', size: 10_000_000 },
    ]);
    expect(await store.files.list('t5')).toEqual([
      { path: 'report.md', size: 5, stored: true },
      { path: 'big.bin', size: 10_000_000, stored: false },
    ]);
    expect((await store.files.read('t5', 'report.md'))?.toString()).toBe('hello');
    expect(await store.files.read('t5', '../t5/report.md')).toBeUndefined();
  });

  it('flags and announces a cancel', async () => {
    await create('t6');
    const sub = redis.duplicate();
    let announce: (id: string) => void = () => undefined;
    const heard = new Promise<string>((resolve) => {
      announce = resolve;
    });
    await store.cancels.subscribe(sub, (id) => announce(id));
    await store.cancels.request('t6');
    expect(await heard).toBe('t6');
    expect(await store.cancels.isRequested('t6')).toBe(true);
    await sub.quit();
  });
});

describe('job catalog', () => {
  it('rejects task payloads that do not match the schema', () => {
    expect(
      TaskJobData.safeParse({ taskId: 'a:b', request: { prompt: 'x' }, createdAt: new Date().toISOString() }).success,
    ).toBe(false);
    expect(
      JOBS.step.name({
        taskId: 't',
        stepIndex: 2,
        callId: 'c',
        action: { action: 'execute-command', command: 'python3 analysis.py' },
      }),
    ).toBe('step 3 · execute-command · python3 analysis.py');
    expect(jobOptions('step')).toMatchObject({ attempts: 3, backoff: { type: 'exponential' } });
  });

  it("sums a step's outcome up for its job's return value, without the outcome's content", () => {
    const run = stepJobResult({
      ok: true,
      result: {
        action: 'execute-command',
        exitCode: 2,
        stdout: 'x'.repeat(10_000),
        stderr: '',
        timedOut: false,
        truncated: false,
        durationMs: 1,
      },
    });
    expect(run).toEqual({ ok: true, action: 'execute-command', exitCode: 2 });
    expect(stepJobResult({ ok: false, error: { code: 'path_outside_workspace', message: 'no' } })).toEqual({
      ok: false,
      refused: 'path_outside_workspace',
    });
  });
});

describe('queueOptions', () => {
  it('caps the queue events stream', async () => {
    const queue = new Queue('capped', queueOptions(redis, prefix));
    await queue.waitUntilReady();
    await queue.add('x', {});
    expect(await redis.hget(`${prefix}:capped:meta`, 'opts.maxLenEvents')).toBe(String(QUEUE_EVENTS_MAX_LEN));
    await queue.close();
  });
});

describe('fenced writes', () => {
  it('save a checkpoint or record a step only while the token holds the task lock', async () => {
    const lockKey = `${prefix}:agent:t-fence:lock`;
    const mine = { lockKey, token: 'run-1' };
    const step = { index: 0, action: 'list-files' as const, status: 'waiting' as const, attempts: 0, queue: 'steps.w' };
    // No lock at all: refused.
    expect(await store.records.saveCheckpoint('t-fence', { n: 1 }, mine)).toBe(false);
    expect(await store.records.checkpoint('t-fence')).toBeUndefined();
    await redis.set(lockKey, 'run-1', 'PX', 10_000);
    expect(await store.records.saveCheckpoint('t-fence', { n: 2 }, mine)).toBe(true);
    expect(await store.records.checkpoint('t-fence')).toEqual({ n: 2 });
    // Another run took the lock: this one's writes are refused and change nothing.
    await redis.set(lockKey, 'run-2', 'PX', 10_000);
    expect(await store.records.saveCheckpoint('t-fence', { n: 3 }, mine)).toBe(false);
    expect(await store.records.checkpoint('t-fence')).toEqual({ n: 2 });
    expect(await store.steps.setFenced('t-fence', step, mine)).toBe(false);
    expect(await store.steps.get('t-fence', 0)).toBeUndefined();
    expect(await store.steps.setFenced('t-fence', step, { lockKey, token: 'run-2' })).toBe(true);
    expect(await store.steps.get('t-fence', 0)).toEqual(step);
    expect(await redis.ttl(`${prefix}:task:t-fence:steps`)).toBeGreaterThan(0);
  });
});

describe('WorkerRegistry', () => {
  it('reaps a dead worker: its unprocessed step jobs leave their task and its queue disappears', async () => {
    const registry = new WorkerRegistry(redis, prefix);
    await registry.beat({ id: 'dead', host: 'h', pid: 1, startedAt: new Date().toISOString(), running: [] }, 10_000);
    const agent = new Queue(AGENT_QUEUE, { connection: redis, prefix });
    const steps = new Queue(stepQueueName('dead'), { connection: redis, prefix });
    const task = await agent.add('research', { x: 1 }, { jobId: 'task-r' });
    await steps.add(
      'step',
      {},
      { jobId: stepJobId('task-r', 0), parent: { id: task.id!, queue: task.queueQualifiedName } },
    );
    expect(await task.getDependenciesCount()).toMatchObject({ unprocessed: 1 });
    expect(await registry.stepQueues()).toContain('steps.dead');
    await new Promise((r) => setTimeout(r, 20));
    expect(await registry.stale(10)).toContain('dead');
    expect(await registry.reap('dead', redis)).toBe(true);
    expect(await registry.stepQueues()).not.toContain('steps.dead');
    expect(await task.getDependenciesCount()).toMatchObject({ unprocessed: 0 });
    // The task can now finish: no pending dependency blocks it.
    const worker = new Worker(AGENT_QUEUE, async () => 'ok', { connection: db.connection(), prefix });
    await new Promise<void>((resolve) => worker.on('completed', () => resolve()));
    await worker.close();
    await agent.close();
    await steps.close();
  });
});

describe('SandboxSlots', () => {
  it('a slot is in use while its task is not over, and not once it is final or unknown', async () => {
    await create('slotted', { request: { prompt: 'in a slot' }, maxSteps: 3 });
    await store.slots.set('slotted', 'slot-a');
    expect(await store.slots.get('slotted')).toBe('slot-a');
    expect(await store.slots.inUse('slot-a')).toBe(true);
    await store.lifecycle.start('slotted', { workerId: 'w1' });
    expect(await store.slots.inUse('slot-a')).toBe(true);
    await store.lifecycle.transition('slotted', 'cancelled');
    expect(await store.slots.inUse('slot-a')).toBe(false);
    expect(await store.slots.inUse('slot-never-given')).toBe(false);
  });
});
