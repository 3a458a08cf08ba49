import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@research/config';
import {
  AGENT_QUEUE,
  EXPIRY_QUEUE,
  type ExpiryJobData,
  FairShare,
  type NewTask,
  QueuedQuota,
  type Redis,
  type TaskJobData,
  TaskStore,
  createRedis,
  waitForRedis,
} from '@research/queue';
import { REDIS_URL, cleanPrefix, requireRedis, testPrefix } from '@research/testing';
import { type SubmitOutcome, Submitter } from './submit.js';

const prefix = testPrefix('submit');
const QUOTA = 5;

let redis: Redis;
let store: TaskStore;
let queue: Queue<TaskJobData>;
let expiry: Queue<ExpiryJobData>;
/** Sizes of the record writes, in order: one per group written. */
let writes: number[] = [];
/** A record write with a task whose prompt this matches waits for `held` (a tenant's write in flight). */
let holdIf: ((prompt: string) => boolean) | undefined;
let held: Promise<void> = Promise.resolve();
/** A record write with a task whose prompt this matches fails. */
let failIf: ((prompt: string) => boolean) | undefined;

function submitter({ maxGroup = 32, queuedLimit = 100 } = {}): Submitter {
  return new Submitter({
    redis,
    store,
    queue,
    expiry,
    quota: new QueuedQuota(redis, prefix, queuedLimit),
    fair: new FairShare(redis, prefix),
    logger: createLogger({ level: 'silent', pretty: false }),
    defaultMaxSteps: 10,
    webhookOf: () => undefined,
    maxGroup,
  });
}

beforeAll(async () => {
  await requireRedis();
  redis = createRedis(REDIS_URL, 'api');
  await waitForRedis(redis, REDIS_URL, 3_000);
  store = new TaskStore(redis, prefix, { retentionSeconds: 600 });
  queue = new Queue<TaskJobData>(AGENT_QUEUE, { connection: redis, prefix });
  expiry = new Queue<ExpiryJobData>(EXPIRY_QUEUE, { connection: redis, prefix });
  // The real writes, observed: how many records each went with, and held or failed on demand.
  const createMany = store.lifecycle.createMany.bind(store.lifecycle);
  store.lifecycle.createMany = async (tasks: readonly NewTask[]) => {
    writes.push(tasks.length);
    const matches = (rule: ((prompt: string) => boolean) | undefined) =>
      rule !== undefined && tasks.some((t) => rule(t.request.prompt));
    if (matches(holdIf)) await held;
    if (matches(failIf)) throw new Error('the write was refused');
    return createMany(tasks);
  };
});

afterAll(async () => {
  await queue?.close();
  await expiry?.close();
  redis?.disconnect();
  await cleanPrefix(prefix);
});

const single = (prompt: string, idempotencyHash?: string) => ({
  request: { prompt },
  ...(idempotencyHash === undefined ? {} : { idempotencyHash }),
});

function ids(outcomes: SubmitOutcome[]): string[] {
  return outcomes.map((o) => {
    if (!o.ok) throw o.error;
    return o.id;
  });
}

/** Holds the writes of tasks with the prompt `prompt` until the returned function is called. */
function holdWrites(prompt: string): () => void {
  let open!: () => void;
  held = new Promise<void>((resolve) => {
    open = resolve;
  });
  holdIf = (p) => p === prompt;
  return () => {
    holdIf = undefined;
    open();
  };
}

describe('Submitter.submitOne (group commit of single submits)', () => {
  it('writes the first submit alone and at once, the ones that arrive meanwhile together, each answered with its own task', async () => {
    writes = [];
    const s = submitter();
    const prompts = Array.from({ length: 12 }, (_, i) => `grouped ${i}`);
    const outcomes = await Promise.all(prompts.map((p) => s.submitOne('t1', single(p))));
    const got = ids(outcomes);
    expect(new Set(got).size).toBe(prompts.length);
    expect(writes[0]).toBe(1);
    expect(writes.length).toBeLessThan(prompts.length);
    expect(writes.reduce((a, b) => a + b, 0)).toBe(prompts.length);
    // Each answer names the task made from that submit's own request, and its job is queued.
    for (const [i, id] of got.entries()) {
      expect((await store.records.view(id))?.prompt).toBe(prompts[i]);
      expect((await queue.getJob(id))?.data.request.prompt).toBe(prompts[i]);
    }
  });

  it('gives each grouped submit its own refusal: past the queued quota only the later ones are refused', async () => {
    const s = submitter({ queuedLimit: QUOTA });
    const outcomes = await Promise.all(
      Array.from({ length: QUOTA + 3 }, (_, i) => s.submitOne('t2', single(`quota ${i}`))),
    );
    expect(outcomes.slice(0, QUOTA).every((o) => o.ok && o.created)).toBe(true);
    for (const o of outcomes.slice(QUOTA)) {
      expect(o.ok).toBe(false);
      if (!o.ok) expect(o.error.code).toBe('quota_exceeded');
    }
  });

  it('answers two submits with one Idempotency-Key in one group with one task', async () => {
    writes = [];
    const s = submitter();
    const first = s.submitOne('t3', single('only once', 'idem-t3'));
    const [a, b] = await Promise.all([first, s.submitOne('t3', single('only once', 'idem-t3'))]);
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(b.id).toBe(a.id);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(await queue.getJob(a.id)).toBeDefined();
  });

  it('fails every submit of a group whose write fails, counts none of them, and writes the next group', async () => {
    writes = [];
    const s = submitter();
    const release = holdWrites('in flight');
    const alone = s.submitOne('t4', single('in flight'));
    // These three wait for the write in flight, so they go as one group, which fails.
    failIf = (p) => p === 'doomed';
    const group = ['with the doomed', 'doomed', 'also with the doomed'].map((p) => s.submitOne('t4', single(p)));
    release();
    expect((await alone).ok).toBe(true);
    const settled = await Promise.allSettled(group);
    expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    failIf = undefined;
    expect(writes).toEqual([1, 3]);
    // Writing goes on after a failed group, and the failed ones left nothing counted.
    expect((await s.submitOne('t4', single('after the failure'))).ok).toBe(true);
    expect(await new QueuedQuota(redis, prefix, 100).counted('t4')).toBe(2);
  });

  it('never makes another tenant wait for a write in flight', async () => {
    const s = submitter();
    const release = holdWrites('held');
    const blocked = s.submitOne('t5', single('held'));
    let settled = false;
    void blocked.then(() => {
      settled = true;
    });
    expect((await s.submitOne('t6', single('not held'))).ok).toBe(true);
    expect(settled).toBe(false);
    release();
    expect((await blocked).ok).toBe(true);
  });

  it('holds a group to maxGroup submits', async () => {
    writes = [];
    const s = submitter({ maxGroup: 3 });
    const release = holdWrites('first');
    const first = s.submitOne('t7', single('first'));
    const rest = Array.from({ length: 7 }, (_, i) => s.submitOne('t7', single(`capped ${i}`)));
    release();
    await Promise.all([first, ...rest]);
    expect(writes).toEqual([1, 3, 3, 1]);
  });
});
