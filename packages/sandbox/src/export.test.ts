import { beforeAll, describe, expect, it } from 'vitest';
import { processesMatching, runCommand, TRANSPORTS, useSandbox } from './test-helpers.js';

describe.each(TRANSPORTS)('bounded export via $mode', ({ mode, useRunner }) => {
  const env = useSandbox({ useRunner, exportMaxFiles: 500, exportMaxNameBytes: 4096 }, { mode });
  const sb = env.sandbox;
  const task = `${mode}-many`;

  beforeAll(async () => {
    // 3,000 files, names f0001 … f3000 (5 bytes each).
    await runCommand(sb, task, 'for i in $(seq -w 1 3000); do echo $i > f$i; done');
  });

  it('caps the list in count, marks it truncated and counts what it left out', async () => {
    const out = await sb.exportFiles(task, { maxBytes: 1024 * 1024, maxFiles: 100 });
    expect(out.files).toHaveLength(100);
    expect(out.files[0]).toMatchObject({ path: 'f0001', size: 5 });
    expect(out.files[99]?.path).toBe('f0100');
    expect(out.files.every((f) => f.content?.length === 5)).toBe(true);
    expect(out).toMatchObject({ truncated: true, omitted: 2900 });
  });

  it('caps the bytes of names (the sandbox option here: 4096 bytes, 819 names of 5)', async () => {
    const out = await sb.exportFiles(task, { maxBytes: 0, maxFiles: 10_000 });
    expect(out.files).toHaveLength(Math.floor(4096 / 5));
    expect(out.files.every((f) => f.content === undefined && f.size === 5)).toBe(true);
    expect(out).toMatchObject({ truncated: true, omitted: 3000 - 819 });
  });

  it('with stopProcesses, first kills what the task left running, so the copy is its final state; without, leaves it', async () => {
    const t = `${mode}-stop`;
    // What outlives its command: a writer (a count in `beat`, every 20 ms) and a long sleep.
    const started = await runCommand(
      sb,
      t,
      '(n=0; while true; do n=$((n+1)); echo $n > beat; sleep 0.02; done) >/dev/null 2>&1 & sleep 3011 & sleep 0.2; echo started',
    );
    expect(started.stdout.trim()).toBe('started');
    const read = async () => (await sb.exportFiles(t, { maxBytes: 1024 })).files[0]?.content?.toString() ?? '';
    // `echo $n > beat` empties the file before it writes: a copy taken in between is empty.
    const beat = async () => {
      for (let i = 0; i < 20; i++) {
        const text = await read();
        if (text.trim() !== '') return Number(text);
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error('beat stayed empty');
    };
    const first = await beat();
    await new Promise((r) => setTimeout(r, 300));
    // A plain export leaves it running: it went on counting.
    expect(await beat()).toBeGreaterThan(first);
    expect(await processesMatching(env.workerId, 'sleep 3011')).toHaveLength(1);

    const final = await sb.exportFiles(t, { maxBytes: 1024, stopProcesses: true });
    expect(final.files.map((f) => f.path)).toEqual(['beat']);
    const last = final.files[0]?.content?.toString();
    await new Promise((r) => setTimeout(r, 300));
    // Nothing of the task runs any more, so nothing wrote after the copy.
    expect(await read()).toBe(last);
    expect(await processesMatching(env.workerId, 'sleep 3011')).toEqual([]);
  });

  // The exec fallback streams the whole tree through getArchive: too slow to make a habit of here.
  it.runIf(mode === 'runner')('keeps a reply of 100,000 files small', async () => {
    const t = `${mode}-huge`;
    await runCommand(sb, t, 'mkdir d && cd d && seq -w 1 100000 | xargs touch && ls | wc -l', { timeoutMs: 120_000 });
    const started = performance.now();
    const out = await sb.exportFiles(t, { maxBytes: 1024 * 1024 });
    console.log(
      `export of 100,000 files: ${Math.round(performance.now() - started)} ms, ${JSON.stringify(out).length} bytes`,
    );
    expect(out.files).toHaveLength(500);
    expect(out.omitted).toBe(99_500);
    expect(JSON.stringify(out).length).toBeLessThan(64 * 1024);
  });
});
