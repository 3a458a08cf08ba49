import { FINAL_STATUSES, type TaskEvent, type TaskStatus, type TaskView } from '@research/contracts';
import { TRANSITIONS } from '@research/queue';
import { beforeAll, describe, expect, it } from 'vitest';
import { replayPrompt, sleep } from '@research/testing';
import { useHarness } from '../test/harness.js';

const h = useHarness();
/** Worker ids of this run: containers are named after them, so concurrent runs must not share one. */
const w = (name: string) => `wt-${name}-${h.id}`;

beforeAll(async () => {
  await h.startWorker(w('race'), { WORKER_CONCURRENCY: '4' });
});

/**
 * A cancel as `POST /v1/jobs/:id/cancel` makes it: a job no worker holds yet is removed and the
 * task cancelled through the guarded transition; otherwise the running task is flagged and its
 * worker told.
 */
async function cancel(id: string): Promise<void> {
  const state = await h.queue.getJobState(id);
  const waiting = state === 'waiting' || state === 'delayed' || state === 'prioritized';
  if (waiting && (await h.queue.remove(id)) === 1) {
    const cancelled = await h.store.lifecycle.transition(id, 'cancelled', {
      error: { code: 'cancelled', message: 'cancelled before it started' },
    });
    if (cancelled.ok || cancelled.status !== 'running') return;
  }
  await h.store.cancels.request(id);
}

describe('cancel racing completion on a real worker', () => {
  it('24 tasks cancelled at varied moments, from queued to finished: each ends with one final status, the last status event of its stream', async () => {
    const TASKS = 24;
    const ids = await Promise.all(
      Array.from({ length: TASKS }, () => h.submit({ prompt: replayPrompt(['sleep 0.3 && echo a', 'echo b']) })),
    );
    // At four moments: at once (the task is still queued, or just taken), while its first step
    // runs, as its last step finishes (racing the completion), and after the task completed.
    const moments: ((v: TaskView) => boolean)[] = [
      () => true,
      (v) => v.steps.some((s) => s.status === 'running'),
      (v) => v.steps.some((s) => s.index === 1),
      (v) => FINAL_STATUSES.includes(v.status),
    ];
    await Promise.all(
      ids.map(async (id, i) => {
        await h.waitFor(id, (v) => moments[i % moments.length]!(v) || FINAL_STATUSES.includes(v.status), 60_000);
        await sleep(Math.floor(i / moments.length) * 5);
        await cancel(id);
      }),
    );
    const views = await Promise.all(ids.map((id) => h.waitFinal(id, 60_000)));

    const ended: Record<string, number> = {};
    for (const view of views) {
      const events = (await h.store.events.read(view.id, '-', 5_000))
        .map((e) => e.event)
        .filter((e): e is Extract<TaskEvent, { type: 'status' }> => e.type === 'status')
        .map((e) => e.status);
      expect(events.filter((s) => FINAL_STATUSES.includes(s))).toEqual([view.status]);
      expect(events.at(-1)).toBe(view.status);
      // Every change in the stream is one the table allows.
      for (let i = 1; i < events.length; i++) expect(TRANSITIONS[events[i - 1] as TaskStatus]).toContain(events[i]);
      ended[view.status] = (ended[view.status] ?? 0) + 1;
    }
    console.log(`cancel race on a worker: ${TASKS} tasks, ended ${JSON.stringify(ended)}`);
    // Settled for good: a moment later nothing has changed.
    await sleep(500);
    for (const view of views) expect(await h.store.lifecycle.status(view.id)).toBe(view.status);
  });
});
