import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TaskView } from '@research/contracts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { System, replayPrompt, requireServices, sleep, type Spawned } from '@research/testing';
import { OwnRedis, summary } from './support.js';

/**
 * Redis goes away for 10 s under load and comes back with its AOF. This runs on a redis-server
 * of its own: the shared one is never touched.
 */
const TASKS = 20;
const STEPS = 6;
const DOWN_MS = 10_000;
const fast = { WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000', WORKER_CONCURRENCY: '6' };

let redis: OwnRedis;
let sys: System;
let api: Spawned;
const workers: Spawned[] = [];

beforeAll(async () => {
  await requireServices();
  redis = new OwnRedis();
  await redis.start();
  sys = new System({ redisUrl: redis.url });
  // The test's own connection waits through the outage like a worker's; its errors are expected.
  sys.redis.on('error', () => undefined);
  api = await sys.startApi();
  workers.push(await sys.startWorker(`redis-${sys.id}-a`, fast));
  workers.push(await sys.startWorker(`redis-${sys.id}-b`, fast));
});

afterAll(async () => {
  await sys?.close();
  await redis?.close();
});

/** A request that must answer within a few seconds; a hang fails the test. */
async function quick(path: string, init: RequestInit = {}): Promise<number> {
  const res = await sys.request(path, { ...init, signal: AbortSignal.timeout(5_000) });
  await res.arrayBuffer();
  return res.status;
}

it('Redis stopped for 10 s and restarted: API answers 503 meanwhile, everything reconnects, every task completes', async () => {
  const prompt = replayPrompt(Array.from({ length: STEPS }, (_, i) => `sleep 0.5 && echo ${i} >> runs.txt`));
  const ids = await Promise.all(Array.from({ length: TASKS }, () => sys.submit({ prompt })));
  await sys.waitFor(ids[0]!, (v) => v.steps.filter((s) => s.status === 'completed').length >= 2);
  // A client follows one task's events through the outage.
  const followed = ids.at(-1)!;
  const following = sys.follow(followed, { timeoutMs: 240_000 });

  await redis.stop();
  const stoppedAt = Date.now();
  const whileDown: Record<string, number[]> = {
    submit: [],
    view: [],
    events: [],
    files: [],
    cancel: [],
    readyz: [],
    healthz: [],
  };
  while (Date.now() - stoppedAt < DOWN_MS) {
    whileDown.submit!.push(
      await quick('/v1/jobs', { method: 'POST', body: JSON.stringify({ prompt: 'during the outage' }) }),
    );
    whileDown.view!.push(await quick(`/v1/jobs/${ids[0]}`));
    whileDown.events!.push(await quick(`/v1/jobs/${ids[0]}/events`));
    whileDown.files!.push(await quick(`/v1/jobs/${ids[0]}/files/runs.txt`));
    whileDown.cancel!.push(await quick(`/v1/jobs/00000000-0000-0000-0000-000000000000/cancel`, { method: 'POST' }));
    whileDown.readyz!.push(await quick('/readyz'));
    whileDown.healthz!.push(await quick('/healthz'));
    await sleep(500);
  }
  await redis.start();

  // A status other than 503 is the API's own failure; its log says which (a 500 is logged with its error).
  const unexpected = Object.entries(whileDown).filter(([route, s]) =>
    s.some((c) => c !== (route === 'healthz' ? 200 : 503)),
  );
  if (unexpected.length > 0)
    console.log(`unexpected answers while Redis was down: ${JSON.stringify(unexpected)}\n${api.output()}`);
  expect(new Set(whileDown.submit)).toEqual(new Set([503]));
  expect(new Set(whileDown.view)).toEqual(new Set([503]));
  expect(new Set(whileDown.events)).toEqual(new Set([503]));
  expect(new Set(whileDown.files)).toEqual(new Set([503]));
  expect(new Set(whileDown.cancel)).toEqual(new Set([503]));
  expect(new Set(whileDown.readyz)).toEqual(new Set([503]));
  expect(new Set(whileDown.healthz)).toEqual(new Set([200]));

  // Nobody restarts anything: the API and the workers reconnect by themselves.
  await sys.waitFor(ids[0]!, () => true, 60_000);
  const settled = await Promise.allSettled(ids.map((id) => sys.waitFinal(id, 120_000)));
  const stuck = settled.flatMap((r, i) => (r.status === 'rejected' ? [ids[i]!] : []));
  if (stuck.length > 0) {
    const file = path.join(os.tmpdir(), `chaos-redis-${sys.id}.log`);
    writeFileSync(file, workers.map((w) => `--- ${w.name}\n${w.output()}`).join('\n'));
    throw new Error(
      `tasks never finished: ${stuck.join(', ')} (worker logs in ${file})\n${(settled.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason}`,
    );
  }
  const views = settled.map((r) => (r as PromiseFulfilledResult<TaskView>).value);
  const lost = views.filter((v) => v.status !== 'completed');
  expect(lost.map((v) => [v.id, v.status, v.error])).toEqual([]);
  let duplicates = 0;
  for (const v of views) {
    const runs = (await (await sys.request(`/v1/jobs/${v.id}/files/runs.txt`)).text()).trim().split('\n');
    // Every step ran; none is missing from the file.
    expect(new Set(runs)).toEqual(new Set(Array.from({ length: STEPS }, (_, i) => String(i))));
    duplicates += runs.length - STEPS;
  }
  // The follower got every event, once, in order, as a fresh replay shows them.
  const { events, reconnects } = await following;
  expect(events.map((e) => e.id)).toEqual((await sys.events(followed)).map((e) => e.id));
  // And the system takes new work afterwards.
  const after = await sys.submit({ prompt: replayPrompt(['echo after the outage']) });
  expect((await sys.waitFinal(after)).status).toBe('completed');
  expect(await quick('/readyz')).toBe(200);

  const answered503 = Object.values(whileDown)
    .flat()
    .filter((s) => s === 503).length;
  // How the workers got through it, from their logs.
  const logs = workers.map((w) => w.output()).join('\n');
  const count = (re: RegExp) => logs.split('\n').filter((l) => re.test(l)).length;
  summary('redis-restart', {
    faults: 1,
    downMs: DOWN_MS,
    tasks: TASKS + 1,
    lost: lost.length,
    requestsWhileDown: Object.values(whileDown).flat().length,
    answered503,
    stepsRunTwice: duplicates,
    sseReconnectAttempts: reconnects,
    taskLocksLost: count(/lost the lock of a running task/),
    stepsAnsweredFromRecord: count(/answering from its record/),
  });
  if (duplicates > 0) {
    // What the workers said about their steps and locks, for whoever reads a failed run.
    console.log(
      logs
        .split('\n')
        .filter((l) => l.includes('"msg"') && !/worker error/.test(l))
        .slice(-80)
        .join('\n'),
    );
  }
  expect(duplicates).toBe(0);
});
