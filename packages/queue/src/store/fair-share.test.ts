import { randomUUID } from 'node:crypto';
import { type Job, Queue, Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { jobLockKey, MAX_JOB_PRIORITY } from '../bullmq-internals.js';
import { bullmqPriority, FAIR_TAG_SPAN, fairTagOf } from '../catalog.js';
import { AGENT_QUEUE } from '../names.js';
import { TaskStore } from '../task-store.js';
import { useRedis } from '../testing/redis.js';
import { FairShare } from './fair-share.js';

const db = useRedis('fair');
const { redis } = db;

/** A queue prefix of its own, the agent queue, a task store and a worker that takes jobs by hand. */
async function setup(maxRunning: number) {
  const prefix = db.newPrefix();
  const queue = db.closeAfter(new Queue(AGENT_QUEUE, { connection: redis, prefix }));
  const worker = db.closeAfter(
    new Worker(AGENT_QUEUE, null, { connection: db.connection(), prefix, autorun: false, lockDuration: 30_000 }),
  );
  const store = new TaskStore(redis, prefix, { retentionSeconds: 60 });
  const fair = new FairShare(redis, prefix, { maxRunning, queue });
  let n = 0;
  const submit = async (tenant: string): Promise<string> => {
    const id = `t-${tenant}-${++n}`;
    await store.lifecycle.create({
      id,
      request: { prompt: 'p' },
      createdAt: new Date().toISOString(),
      maxSteps: 1,
      tenant,
    });
    await queue.add('task', {}, { jobId: id, priority: await fair.tag(tenant) });
    return id;
  };
  /** What a worker process does with the next job: take it, then ask the gate. */
  const next = async (): Promise<{ job: Job; admitted: boolean; tenant: string } | undefined> => {
    const job = await worker.getNextJob(`token-${randomUUID()}`);
    if (!job) return undefined;
    const entry = await fair.enter(job);
    return { job, admitted: entry.admitted, tenant: entry.tenant };
  };
  return { prefix, queue, worker, store, fair, submit, next };
}

describe('fair share between tenants', () => {
  it('tags each tenant’s n-th waiting task next to the others’ n-th: 5 tasks submitted behind 40 start next, not after them', async () => {
    const { submit, next, queue } = await setup(0);
    const a: string[] = [];
    for (let i = 0; i < 40; i++) a.push(await submit('a'));
    // Three of A's tasks start before B arrives.
    const started: string[] = [];
    for (let i = 0; i < 3; i++) started.push((await next())!.job.id!);
    expect(started).toEqual(a.slice(0, 3));
    const b: string[] = [];
    for (let i = 0; i < 5; i++) b.push(await submit('b'));
    const order: string[] = [];
    for (let got = await next(); got; got = await next()) {
      order.push(got.job.id!);
      await got.job.moveToCompleted('done', got.job.token!, false);
    }
    // B's first starts after at most one more of A's; B's five are spread over the next ten starts.
    expect(order.indexOf(b[0]!)).toBeLessThanOrEqual(1);
    expect(order.indexOf(b[4]!)).toBeLessThan(10);
    // A keeps its own order, and nothing is lost.
    expect(order.filter((id) => id.startsWith('t-a-'))).toEqual(a.slice(3));
    expect(order).toHaveLength(42);
    expect(await queue.count()).toBe(0);
  });

  it('gives a tenant back from idle no credit: its tasks start at the clock, after what others have in the same round', async () => {
    const { fair, submit, next } = await setup(0);
    for (let i = 0; i < 6; i++) await submit('a');
    for (let i = 0; i < 6; i++) {
      const { job } = (await next())!;
      await job.moveToCompleted('done', job.token!, false);
    }
    // The clock is at 6 now; a fresh tenant starts at 7, and so does A's next.
    expect(await fair.tag('c')).toBe(7);
    expect(await fair.tag('a')).toBe(7);
  });
});

describe('tags inside BullMQ priorities', () => {
  it('a batch takes consecutive tags in one call, and the next task of its tenant follows them', async () => {
    const { fair } = await setup(0);
    const first = await fair.tag('b', 3);
    expect(await fair.tag('b')).toBe(first + 3);
  });

  it("a task's own priority is the band, the tag orders within it, and every value fits BullMQ's range", () => {
    expect(bullmqPriority(10, 5)).toBeLessThan(bullmqPriority(9, 1));
    expect(bullmqPriority(5, 1)).toBeLessThan(bullmqPriority(5, 2));
    expect(fairTagOf(bullmqPriority(3, 42))).toBe(42);
    expect(bullmqPriority(1, FAIR_TAG_SPAN * 4)).toBeLessThanOrEqual(MAX_JOB_PRIORITY);
    expect(bullmqPriority(10, 0)).toBeGreaterThan(0);
  });
});

describe('TENANT_MAX_RUNNING', () => {
  it('parks a task past the limit in delayed, and the run that frees a slot promotes it; the other tenant is not held back', async () => {
    const { fair, submit, next, queue } = await setup(2);
    const a = [await submit('a'), await submit('a'), await submit('a')];
    const first = (await next())!;
    const second = (await next())!;
    expect([first.admitted, second.admitted]).toEqual([true, true]);
    const b = await submit('b');
    const third = (await next())!;
    expect(third).toMatchObject({ admitted: false, tenant: 'a' });
    expect(third.job.id).toBe(a[2]);
    await fair.park(third.job, 'a');
    expect(await queue.getJobState(a[2]!)).toBe('delayed');
    // B's task runs although A's third waits.
    const fourth = (await next())!;
    expect(fourth).toMatchObject({ admitted: true, tenant: 'b' });
    expect(fourth.job.id).toBe(b);
    expect(await fair.slots('a')).toHaveLength(2);
    // A's first ends: its slot goes to the parked task, which is back in the queue at once.
    await fair.leave(first.job, 'a');
    await first.job.moveToCompleted('done', first.job.token!, false);
    expect(await queue.getJobState(a[2]!)).toBe('prioritized');
    const again = (await next())!;
    expect(again).toMatchObject({ admitted: true, tenant: 'a' });
    expect(again.job.id).toBe(a[2]);
    expect((await fair.slots('a')).sort()).toEqual([a[1], a[2]].sort());
  });

  it('frees the slot of a run whose lock is gone (its worker was killed), and a resumed task counts once', async () => {
    const { fair, submit, next } = await setup(1);
    const a1 = await submit('a');
    const a2 = await submit('a');
    const first = (await next())!;
    expect(first.admitted).toBe(true);
    const second = (await next())!;
    expect(second.admitted).toBe(false);
    await fair.park(second.job, 'a');
    // The first run's worker dies: its lock expires (here: is deleted), and the slot with it.
    await redis.del(jobLockKey(first.job));
    expect(await fair.reconcile()).toBe(1);
    const promoted = (await next())!;
    expect(promoted.job.id).toBe(a2);
    expect(promoted.admitted).toBe(true);
    expect(await fair.slots('a')).toEqual([a2]);
    // A task resumed with a new lock token takes its own slot over instead of a second one.
    const resumed = await fair.enter(Object.assign(Object.create(promoted.job), { token: 'another-token' }) as Job);
    expect(resumed.admitted).toBe(true);
    expect(await fair.slots('a')).toEqual([a2]);
    expect(a1).not.toBe(a2);
  });

  it('gives the slot a cancelled parked task would have had to the next parked one', async () => {
    const { fair, submit, next, queue } = await setup(1);
    await submit('a');
    const a2 = await submit('a');
    const a3 = await submit('a');
    const first = (await next())!;
    for (let i = 0; i < 2; i++) {
      const refused = (await next())!;
      expect(refused.admitted).toBe(false);
      await fair.park(refused.job, 'a');
    }
    // a2 is cancelled while parked: the API removes its delayed job.
    expect(await queue.remove(a2)).toBe(1);
    await fair.leave(first.job, 'a');
    await first.job.moveToCompleted('done', first.job.token!, false);
    expect(await queue.getJobState(a3)).toBe('prioritized');
    const promoted = (await next())!;
    expect(promoted).toMatchObject({ admitted: true, tenant: 'a' });
    expect(promoted.job.id).toBe(a3);
  });
});
