import type { StepOutcome } from '@research/contracts';
import { describe, expect, it } from 'vitest';
import { TaskStore } from '../task-store.js';
import { useRedis } from '../testing/redis.js';
import { totalBytes } from './footprint.js';

const { redis, prefix } = useRedis('footprint');
const store = new TaskStore(redis, prefix, { retentionSeconds: 60 });

const at = () => new Date().toISOString();
const output = 'x'.repeat(50_000);
const outcome: StepOutcome = {
  ok: true,
  result: {
    action: 'execute-command',
    exitCode: 0,
    stdout: output,
    stderr: '',
    timedOut: false,
    truncated: false,
    durationMs: 3,
  },
};

async function task(id: string): Promise<void> {
  await store.lifecycle.create({ id, request: { prompt: 'p' }, createdAt: at(), maxSteps: 5 });
}

describe('a command output stored once', () => {
  it('keeps a tool_result event without the outcome its step recorded, and puts it back on read and wait', async () => {
    await task('t1');
    await store.steps.complete(
      't1',
      { index: 0, action: 'execute-command', status: 'completed', attempts: 1 },
      outcome,
    );
    const event = {
      type: 'tool_result',
      at: at(),
      step: 0,
      action: 'execute-command',
      outcome,
      durationMs: 3,
    } as const;
    const blocking = redis.duplicate();
    const [first] = await store.events.read('t1');
    const waiting = store.events.wait(blocking, 't1', first!.id, 5_000);
    const { footprint } = await store.events.appendAndCount('t1', event);
    expect((await waiting).map((e) => e.event)).toEqual([event]);
    await blocking.quit();
    expect((await store.events.read('t1')).at(-1)?.event).toEqual(event);

    // In Redis the output is there once: in the outcomes hash, not in the stream.
    const rows = await redis.xrange(`${prefix}:task:t1:events`, '-', '+');
    expect(rows.at(-1)?.[1][1]).not.toContain(output);
    expect(await redis.hget(`${prefix}:task:t1:outcomes`, '0')).toContain(output);
    // The footprint counted the outcome once and the stored event without it.
    expect(footprint.writtenBytes).toBeGreaterThan(output.length);
    expect(footprint.writtenBytes).toBeLessThan(output.length + 1_000);
    expect(await store.footprint.get('t1')).toEqual(footprint);
  });

  it('keeps a tool_result whole when its step recorded no outcome (a step refused before it ran)', async () => {
    await task('t2');
    const refused = { ok: false, error: { code: 'path_outside_workspace', message: 'no' } } as const;
    const event = {
      type: 'tool_result',
      at: at(),
      step: 0,
      action: 'read-file',
      outcome: refused,
      durationMs: 0,
    } as const;
    await store.events.append('t2', event);
    expect((await store.events.read('t2')).at(-1)?.event).toEqual(event);
    expect((await redis.xrange(`${prefix}:task:t2:events`, '-', '+')).at(-1)?.[1][1]).toContain(
      'path_outside_workspace',
    );
  });

  it('counts the kept files by their latest snapshot, not by every one', async () => {
    await task('t3');
    const files = [{ path: 'a.txt', size: 10_000, content: Buffer.alloc(10_000) }];
    await store.files.save('t3', files);
    await store.files.save('t3', files);
    const { footprint } = await store.events.appendAndCount('t3', { type: 'turn', at: at(), turn: 1 });
    expect(footprint.fileBytes).toBeGreaterThan(10_000);
    expect(footprint.fileBytes).toBeLessThan(10_100);
    expect(totalBytes(footprint)).toBe(footprint.fileBytes + footprint.writtenBytes);
  });
});
