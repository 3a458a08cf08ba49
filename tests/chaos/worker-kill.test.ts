import type { StepOutcome, TaskView } from '@research/contracts';
import { expect, it } from 'vitest';
import { replayPrompt, sleep, type Spawned } from '@research/testing';
import { useSystem } from '../src/use-system.js';
import { summary } from './support.js';

const TASKS = 50;
const STEPS = 4;
const fast = { WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000', WORKER_CONCURRENCY: '10' };

let victim: Spawned;
let survivor: Spawned;

const sys = useSystem(async (sys) => {
  await sys.startApi();
  victim = await sys.startWorker(victimId, fast);
  survivor = await sys.startWorker(survivorId, fast);
});
const victimId = `kill-${sys.id}-a`;
const survivorId = `kill-${sys.id}-b`;

/**
 * Step `i` does its work, then appends `i <token>` to runs.txt, then prints the token; the
 * token a step's result carries names the run whose result the task used.
 */
const step = (i: number) => `sleep 0.3 && r=$RANDOM$RANDOM$RANDOM && echo "${i} $r" >> runs.txt && echo "$r"`;

it('kill -9 of one of two workers with 50 tasks in flight: all complete, no finished step runs twice', async () => {
  const prompt = replayPrompt(Array.from({ length: STEPS }, (_, i) => step(i)));
  const ids = await Promise.all(Array.from({ length: TASKS }, () => sys.submit({ prompt })));

  // Kill while the victim is mid-way: some of its steps done, others running.
  const stepsKey = (id: string) => `${sys.prefix}:task:${id}:steps`;
  const victimQueue = `steps.${victimId}`;
  for (const until = Date.now() + 120_000; ; ) {
    if (Date.now() > until) throw new Error('the victim never got busy');
    const info = JSON.parse((await sys.redis.get(`${sys.prefix}:worker:${victimId}`)) ?? '{"running":[]}') as {
      running: string[];
    };
    const done = (await Promise.all(ids.map((id) => sys.redis.hvals(stepsKey(id)))))
      .flat()
      .map((raw) => JSON.parse(raw) as { status: string; queue?: string })
      .filter((s) => s.queue === victimQueue && s.status === 'completed').length;
    if (info.running.length >= 3 && done >= 10) break;
    await sleep(50);
  }
  await sys.stop(victim, 'SIGKILL');

  // What the victim had recorded when it died (it writes nothing more), for the tasks it had not
  // finished. A step it recorded as completed has its outcome stored and must never run again. A
  // step it had started but not recorded may have appended its line before the kill landed; its
  // result died with the worker, so running it again is right (at-least-once for unfinished work).
  const inFlight = new Set<string>();
  const completedAtKill = new Set<string>();
  const onVictim = new Set<string>();
  for (const id of ids) {
    const status = await sys.redis.hget(`${sys.prefix}:task:${id}`, 'status');
    for (const raw of status === 'completed' ? [] : await sys.redis.hvals(stepsKey(id))) {
      const s = JSON.parse(raw) as { index: number; status: string; queue?: string };
      if (s.queue !== victimQueue) continue;
      onVictim.add(id);
      if (s.status === 'completed') completedAtKill.add(`${id}:${s.index}`);
      else inFlight.add(`${id}:${s.index}`);
    }
  }

  const views: TaskView[] = await Promise.all(ids.map((id) => sys.waitFinal(id, 240_000)));
  const lost = views.filter((v) => v.status !== 'completed');
  let reruns = 0;
  let finishedRerun = 0;
  let moved = 0;
  for (const view of views) {
    expect(view.status, JSON.stringify(view)).toBe('completed');
    const events = await sys.events(view.id);
    const results = events
      .filter((e) => e.type === 'tool_result')
      .map((e) => e.data as { step: number; outcome: StepOutcome });
    const runs = (await (await sys.request(`/v1/jobs/${view.id}/files/runs.txt`)).text()).trim().split('\n');
    if (onVictim.has(view.id) && view.workerId === survivorId) moved++;
    for (let i = 0; i < STEPS; i++) {
      // A result, once reported, never changes (a resumed task is answered from the stored one).
      const tokens = new Set(
        results
          .filter((r) => r.step === i)
          .map((r) =>
            r.outcome.ok && r.outcome.result.action === 'execute-command' ? r.outcome.result.stdout.trim() : '?',
          ),
      );
      expect(tokens.size, `${view.id} step ${i}`).toBe(1);
      const [finished] = [...tokens];
      const lines = runs.filter((l) => l.split(' ')[0] === String(i)).map((l) => l.split(' ')[1]);
      // The run whose result the task used appended exactly once.
      expect(
        lines.filter((t) => t === finished),
        `${view.id} step ${i}: ${runs.join(',')}`,
      ).toHaveLength(1);
      if (lines.length > 1 && inFlight.has(`${view.id}:${i}`)) reruns += lines.length - 1;
      else if (lines.length > 1) finishedRerun++;
    }
  }
  summary('worker-kill', {
    faults: 1,
    tasks: TASKS,
    completed: views.length - lost.length,
    lost: lost.length,
    stepsFinishedOnVictim: completedAtKill.size,
    stepsInFlightAtKill: inFlight.size,
    rerunsOfUnfinishedSteps: reruns,
    finishedStepsRerun: finishedRerun,
    tasksResumedOnSurvivor: moved,
  });
  // Every task the victim was working on finished on the survivor.
  expect(moved).toBe(onVictim.size);
  expect(lost).toHaveLength(0);
  // Only a step that was in flight at the kill may have run twice.
  expect(finishedRerun).toBe(0);
  expect(completedAtKill.size).toBeGreaterThan(0);
});

it('kill -9 of the last worker, restarted under the same id (as a supervisor would): its tasks finish, each used result ran once', async () => {
  const ids = await Promise.all(
    Array.from({ length: 5 }, () =>
      sys.submit({ prompt: replayPrompt(Array.from({ length: STEPS }, (_, i) => step(i))) }),
    ),
  );
  await sys.waitFor(ids[0]!, (v) => v.steps.some((s) => s.index === 1 && s.status === 'running'));
  await sys.stop(survivor, 'SIGKILL');
  await sys.startWorker(survivorId, fast);
  const views = await Promise.all(ids.map((id) => sys.waitFinal(id)));
  let reruns = 0;
  for (const view of views) {
    expect(view.status).toBe('completed');
    const results = (await sys.events(view.id))
      .filter((e) => e.type === 'tool_result')
      .map((e) => e.data as { step: number; outcome: StepOutcome });
    const runs = (await (await sys.request(`/v1/jobs/${view.id}/files/runs.txt`)).text()).trim().split('\n');
    for (let i = 0; i < STEPS; i++) {
      const finished = results.findLast((r) => r.step === i)?.outcome;
      const token = finished?.ok && finished.result.action === 'execute-command' ? finished.result.stdout.trim() : '?';
      const lines = runs.filter((l) => l.split(' ')[0] === String(i)).map((l) => l.split(' ')[1]);
      // The run whose result the task used appended exactly once; others died in flight.
      expect(
        lines.filter((t) => t === token),
        `${view.id} step ${i}: ${runs.join(',')}`,
      ).toHaveLength(1);
      reruns += lines.length - 1;
    }
  }
  summary('worker-kill (restart under the same id)', {
    faults: 1,
    tasks: ids.length,
    lost: views.filter((v) => v.status !== 'completed').length,
    rerunsOfUnfinishedSteps: reruns,
  });
});
