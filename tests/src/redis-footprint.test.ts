import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { block, replayPrompt } from '@research/testing';
import { useSystem } from './use-system.js';
import { commandResult, stepOutcomes } from './fakes.js';

/**
 * What a task keeps in Redis is bounded by TASK_MAX_REDIS_BYTES (events, step outcomes, kept
 * files), and a command's output is kept once (in the step's outcome; the event stream points at it).
 */
const workerId = `redis-footprint-${randomUUID().slice(0, 8)}`;
const CAP_BYTES = 4 * 1024 * 1024;

const sys = useSystem(async (sys) => {
  await sys.startApi();
  // Live output off: the bound below is the output's own storage; live output adds at most
  // SANDBOX_LIVE_OUTPUT_BYTES per command beside it (see README, Live output).
  await sys.startWorker(workerId, { TASK_MAX_REDIS_BYTES: String(CAP_BYTES), SANDBOX_LIVE_OUTPUT_BYTES: '0' });
});

/** Bytes Redis holds for every key of the task (its record, steps, outcomes, events, files, jobs). */
async function redisBytesOf(id: string): Promise<{ total: number; byKey: Record<string, number> }> {
  const byKey: Record<string, number> = {};
  let cursor = '0';
  do {
    const [next, keys] = await sys.redis.scan(cursor, 'MATCH', `${sys.prefix}:*${id}*`, 'COUNT', 1_000);
    cursor = next;
    for (const key of keys) {
      const bytes = Number(await sys.redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
      const kind = key
        .slice(sys.prefix.length + 1)
        .replace(id, 'ID')
        .replace(/ID-\d+/, 'ID-<step>');
      byKey[kind] = (byKey[kind] ?? 0) + bytes;
    }
  } while (cursor !== '0');
  return { total: Object.values(byKey).reduce((a, b) => a + b, 0), byKey };
}

describe('a task’s Redis footprint', () => {
  it('a 500-step task of 100,000 files stays well under the cap, and its view under 256 KiB', async () => {
    const commands = [
      'mkdir d && cd d && seq -w 1 100000 | xargs touch && ls | wc -l',
      ...Array.from({ length: 499 }, (_, i) => `echo step-${i + 2}`),
    ];
    const prompt = [
      block({ action: 'execute-command', command: commands[0]!, timeoutMs: 120_000 }),
      replayPrompt(commands.slice(1)),
    ].join('\n');
    const id = await sys.submit({ prompt, maxSteps: 500 });
    const view = await sys.waitFinal(id, 1_400_000);
    // 500 tool calls use the whole budget: the task ends on max_steps, with every step done.
    expect(view.steps).toHaveLength(500);
    expect(view.steps.every((s) => s.status === 'completed')).toBe(true);
    expect(view.error?.code).toBe('max_steps');
    const raw = await (await sys.request(`/v1/jobs/${id}`)).text();
    const footprint = await sys.store.footprint.get(id);
    const measured = await redisBytesOf(id);
    console.log(
      `500 steps, 100,000 files: GET /v1/jobs/:id ${raw.length} bytes; counted footprint ${JSON.stringify(footprint)}; ` +
        `Redis MEMORY USAGE ${measured.total} bytes: ${JSON.stringify(measured.byKey)}`,
    );
    expect(raw.length).toBeLessThan(256 * 1024);
    expect(footprint.writtenBytes + footprint.fileBytes).toBeLessThan(CAP_BYTES);
  }, 1_500_000);

  it('stops a task that prints past TASK_MAX_REDIS_BYTES with storage_quota_exceeded; each output is stored once', async () => {
    const OUTPUT = 60_000;
    const STEPS = 120;
    const prompt = replayPrompt(Array.from({ length: STEPS }, () => `head -c ${OUTPUT} /dev/zero | tr '\\0' a`));
    const id = await sys.submit({ prompt, maxSteps: STEPS });
    const view = await sys.waitFinal(id, 600_000);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('storage_quota_exceeded');
    const ran = view.steps.length;
    expect(ran).toBeGreaterThan(10);
    expect(ran).toBeLessThan(STEPS);

    // The events still carry each command's whole output (put back from the step's outcome).
    const outcomes = stepOutcomes(await sys.events(id));
    expect(outcomes).toHaveLength(ran);
    expect(outcomes.every((o) => commandResult(o).stdout.length === OUTPUT)).toBe(true);

    const footprint = await sys.store.footprint.get(id);
    const measured = await redisBytesOf(id);
    const outputBytes = ran * OUTPUT;
    const events = measured.byKey['task:ID:events'] ?? 0;
    const stored = (measured.byKey['task:ID:outcomes'] ?? 0) + events;
    console.log(
      `cap ${CAP_BYTES}: stopped after ${ran} steps of ${OUTPUT} bytes (${outputBytes} bytes of output); ` +
        `counted footprint ${JSON.stringify(footprint)}; events + outcomes ${stored} bytes = ${(stored / outputBytes).toFixed(2)}x the output; ` +
        `whole task in Redis ${measured.total} bytes = ${(measured.total / outputBytes).toFixed(2)}x: ${JSON.stringify(measured.byKey)}`,
    );
    // Past the cap by at most the step that crossed it (its outcome and events).
    expect(footprint.writtenBytes + footprint.fileBytes).toBeLessThan(CAP_BYTES + 2 * OUTPUT);
    // The stream holds no output: far less than one output per step.
    expect(events).toBeLessThan(outputBytes / 10);
    expect(stored / outputBytes).toBeLessThan(1.2);
  }, 900_000);
});
