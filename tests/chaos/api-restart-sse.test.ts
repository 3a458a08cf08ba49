import { afterAll, beforeAll, expect, it } from 'vitest';
import { System, replayPrompt, requireServices, sleep, type Spawned, type StreamedEvent } from '@research/testing';
import { summary } from './support.js';

let sys: System;
let api: Spawned;

beforeAll(async () => {
  await requireServices();
  sys = new System();
  api = await sys.startApi();
  await sys.startWorker(`sse-${sys.id}`);
});

afterAll(async () => {
  await sys?.close();
});

it('a client following SSE across API restarts (SIGTERM, then SIGKILL) resumes with Last-Event-ID and misses nothing', async () => {
  const STEPS = 16;
  const id = await sys.submit({
    prompt: replayPrompt(Array.from({ length: STEPS }, (_, i) => `sleep 0.4 && echo step-${i}`)),
  });
  const seen: StreamedEvent[] = [];
  const following = sys.follow(id, { onEvent: (e) => seen.push(e) });

  // Restart the API (same port) twice while the task runs and the client is connected.
  let faults = 0;
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const before = seen.length;
    for (const until = Date.now() + 60_000; seen.length < before + 4; ) {
      if (Date.now() > until) throw new Error('no new events');
      await sleep(50);
    }
    await sys.stop(api, signal);
    faults++;
    await sleep(700); // the task goes on meanwhile: events pile up that the client must get later
    api = await sys.startApi();
  }

  const { events, reconnects } = await following;
  // Compare with a full replay from a fresh connection at the end.
  const replay = await sys.events(id);
  expect(replay.at(-1)).toMatchObject({ type: 'status', data: { status: 'completed' } });
  expect(events.map((e) => e.id)).toEqual(replay.map((e) => e.id));
  expect(events.map((e) => e.type)).toEqual(replay.map((e) => e.type));
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  const outputs = events
    .filter((e) => e.type === 'tool_result')
    .map((e) => (e.data as { outcome: { result: { stdout: string } } }).outcome.result.stdout.trim());
  expect(outputs).toEqual(Array.from({ length: STEPS }, (_, i) => `step-${i}`));
  expect(reconnects).toBeGreaterThanOrEqual(2);
  summary('api-restart-sse', {
    faults,
    tasks: 1,
    lost: 0,
    events: events.length,
    reconnectAttempts: reconnects,
    missed: replay.length - events.length,
    duplicates: events.length - new Set(events.map((e) => e.id)).size,
  });
});
