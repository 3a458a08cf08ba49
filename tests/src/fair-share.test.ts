import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATUSES, type TaskView } from '@research/contracts';
import { System, replayPrompt, requireServices, sleep } from '@research/testing';

const KEYS = {
  a: 'flood-a-system-key-0123456789',
  c: 'flood-c-system-key-0123456789',
  b: 'late-b-system-key-0123456789',
};
type Tenant = keyof typeof KEYS;
const as = (tenant: Tenant) => ({ authorization: `Bearer ${KEYS[tenant]}` });

/** Two workers of two slots each: four tasks run at once, two per tenant at most. */
const WORKERS = 2;
const CONCURRENCY = 2;
const MAX_RUNNING = 2;
/** Each flooding tenant's tasks: 500 in all before B's five, as in the bound. */
const FLOOD = 250;
const LATE = 5;
/** Each task is one command that takes a second: the "task duration" the figures are counted in. */
const PROMPT = replayPrompt(['sleep 1']);

let sys: System;

beforeAll(async () => {
  await requireServices();
  sys = new System({ tag: 'fair' });
  await sys.startApi({
    API_KEYS: Object.entries(KEYS)
      .map(([t, k]) => `${t}:${k}`)
      .join(','),
  });
  await sys.startWorkers(WORKERS, { WORKER_CONCURRENCY: String(CONCURRENCY), TENANT_MAX_RUNNING: String(MAX_RUNNING) });
});

afterAll(async () => {
  await sys?.close();
});

async function submitMany(tenant: Tenant, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await sys.submit({ prompt: PROMPT, maxSteps: 3 }, as(tenant)));
  return ids;
}

async function viewOf(tenant: Tenant, id: string): Promise<TaskView> {
  const res = await sys.request(`/v1/jobs/${id}`, { headers: as(tenant) });
  if (!res.ok) throw new Error(`GET /v1/jobs/${id} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as TaskView;
}

async function finalView(tenant: Tenant, id: string, timeoutMs = 300_000): Promise<TaskView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await viewOf(tenant, id);
    if (FINAL_STATUSES.includes(view.status)) return view;
    if (Date.now() > deadline) throw new Error(`task ${id} did not finish: ${JSON.stringify(view)}`);
    await sleep(500);
  }
}

/** The most tasks of `views` running at one time, from their start and finish times. */
function maxConcurrent(views: TaskView[]): number {
  const edges = views.flatMap((v) => [
    { at: Date.parse(v.startedAt!), d: 1 },
    { at: Date.parse(v.finishedAt!), d: -1 },
  ]);
  // A finish and a start at the same millisecond: the finish first (the slot is given back after it).
  edges.sort((x, y) => x.at - y.at || x.d - y.d);
  let now = 0;
  let most = 0;
  for (const e of edges) {
    now += e.d;
    most = Math.max(most, now);
  }
  return most;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? Number.NaN;

describe('fair share between tenants on the real API, workers, Redis and Docker', () => {
  it('a tenant that submits 5 after two tenants flooded the queue with 500 starts next to them, and no tenant runs past TENANT_MAX_RUNNING', async () => {
    const floodStart = Date.now();
    const a = await submitMany('a', FLOOD);
    const c = await submitMany('c', FLOOD);
    // B arrives once the floods have started running and every slot is taken.
    const deadline = Date.now() + 120_000;
    while ((await viewOf('c', c[0]!)).status === 'queued' && Date.now() < deadline) await sleep(200);
    const bSubmittedAt = Date.now();
    const b = await submitMany('b', LATE);

    // One task at a time, in submit order (about the order they finish in): few requests.
    const finalsOf = async (tenant: Tenant, ids: string[]) => {
      const views: TaskView[] = [];
      for (const id of ids) views.push(await finalView(tenant, id));
      return views;
    };
    const finals = { b: await finalsOf('b', b), a: await finalsOf('a', a), c: await finalsOf('c', c) };
    const all = [...finals.a, ...finals.c, ...finals.b];
    expect(all.map((v) => v.status)).toEqual(all.map(() => 'completed'));
    for (const [tenant, views] of Object.entries(finals))
      expect(views.map((v) => v.tenant)).toEqual(views.map(() => tenant));

    // The limit holds across both workers: never more than MAX_RUNNING of one tenant at once.
    for (const views of Object.values(finals)) expect(maxConcurrent(views)).toBeLessThanOrEqual(MAX_RUNNING);

    const started = (v: TaskView) => Date.parse(v.startedAt!);
    const bFirst = Math.min(...finals.b.map(started));
    const bLast = Math.max(...finals.b.map(started));
    const floods = [...finals.a, ...finals.c];
    const floodsBefore = floods.filter((v) => started(v) < bSubmittedAt).length;
    const floodsBetween = floods.filter((v) => started(v) >= bSubmittedAt && started(v) < bFirst).length;
    const floodsAfter = floods.filter((v) => started(v) > bLast).length;
    // In FIFO order B's first would start after all 500 flood tasks; with fair share it starts
    // among the next few, and all of B's five start while most of the floods still wait.
    expect(floodsAfter).toBeGreaterThan(floods.length / 2);

    const durations = all.map((v) => Date.parse(v.finishedAt!) - started(v));
    const taskMs = median(durations);
    const figures = {
      workers: WORKERS,
      slots: WORKERS * CONCURRENCY,
      tenantMaxRunning: MAX_RUNNING,
      floodTasks: `${FLOOD} (a) + ${FLOOD} (c)`,
      medianTaskMs: taskMs,
      floodTasksStartedBeforeBSubmitted: floodsBefore,
      floodTasksStartedBetweenBSubmitAndBFirstStart: floodsBetween,
      bFirstStartAfterBSubmitMs: bFirst - bSubmittedAt,
      bFirstStartInTaskDurations: Number(((bFirst - bSubmittedAt) / taskMs).toFixed(2)),
      bLastStartAfterBSubmitMs: bLast - bSubmittedAt,
      floodTasksStartedAfterBLast: floodsAfter,
      floodsDoneAfterMs: Math.max(...floods.map((v) => Date.parse(v.finishedAt!))) - floodStart,
      maxRunningAtOnce: { a: maxConcurrent(finals.a), c: maxConcurrent(finals.c), b: maxConcurrent(finals.b) },
    };
    console.log(`fair share figures: ${JSON.stringify(figures, null, 2)}`);
  }, 600_000);
});
