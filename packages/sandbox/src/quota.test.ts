import type { StepOutcome } from '@research/contracts';
import { describe, expect, it } from 'vitest';
import { rootExec, runCommand, TRANSPORTS, useSandbox, waitFor } from './test-helpers.js';

const MB = 1024 * 1024;
const QUOTA_MB = 20;
const code = (o: StepOutcome) => (o.ok ? 'ok' : o.error.code);

/** Disk the task uses as the kernel counts it (allocated blocks), read as root. */
async function usedMb(workerId: string, task: string): Promise<number> {
  const out = await rootExec(workerId, `du -s -B1 /workspace/${task} | cut -f1`);
  return Number(out.trim()) / MB;
}

describe.each(TRANSPORTS)('per-task disk quota via $mode', ({ mode, useRunner }) => {
  const env = useSandbox({ useRunner, taskDiskMb: QUOTA_MB }, { mode });
  const sb = env.sandbox;

  it('stops one file written fast at the quota with disk_quota_exceeded', async () => {
    const o = await sb.run(`${mode}-fast`, { action: 'execute-command', command: 'head -c 200M /dev/zero > big' });
    expect(code(o)).toBe('disk_quota_exceeded');
    expect(o.ok ? '' : o.error.message).toMatch(/disk quota is 20\.0 MB/);
    // RLIMIT_FSIZE cut the file at what was left of the budget.
    expect(await usedMb(env.workerId, `${mode}-fast`)).toBeLessThanOrEqual(QUOTA_MB + 0.1);
  });

  it('refuses a create-file past the quota; deleting files makes room again', async () => {
    const t = `${mode}-create`;
    const content = 'y'.repeat(900 * 1024);
    await runCommand(sb, t, 'head -c 19800K /dev/zero > a');
    expect(code(await sb.run(t, { action: 'create-file', filePath: 'b.txt', content }))).toBe('disk_quota_exceeded');
    expect((await runCommand(sb, t, 'ls')).stdout).toBe('a\n');
    await runCommand(sb, t, 'rm a');
    expect(code(await sb.run(t, { action: 'create-file', filePath: 'b.txt', content }))).toBe('ok');
  });

  it('lets a neighbour in the same container go on while a task is at its quota', async () => {
    const hog = `${mode}-hog`;
    expect(code(await sb.run(hog, { action: 'execute-command', command: 'head -c 100M /dev/zero > big' }))).toBe(
      'disk_quota_exceeded',
    );
    const n = await runCommand(sb, `${mode}-neighbour`, 'head -c 15M /dev/zero > data && wc -c < data');
    expect(n).toMatchObject({ exitCode: 0, stdout: `${15 * MB}\n` });
    // The task at its quota still runs commands that do not write (to clean up, say).
    expect((await runCommand(sb, hog, 'ls')).stdout).toBe('big\n');
  });
});

describe('per-task disk quota: writers the file-size limit alone does not stop (runner)', () => {
  const env = useSandbox({ taskDiskMb: QUOTA_MB });
  const sb = env.sandbox;

  it('stops many files written at once, each under the budget', async () => {
    const o = await sb.run('many', {
      action: 'execute-command',
      command: 'for i in $(seq 1 100); do head -c 4M /dev/zero > f$i; done; echo wrote-all',
      timeoutMs: 60_000,
    });
    expect(code(o)).toBe('disk_quota_exceeded');
    const used = await usedMb(env.workerId, 'many');
    console.log(`quota ${QUOTA_MB} MB: many 4 MB files stopped at ${used.toFixed(1)} MB`);
    expect(used).toBeLessThan(100 * 4);
  });

  it('stops a background writer its command left running, and kills it', async () => {
    await runCommand(
      sb,
      'bg',
      "setsid sh -c 'i=0; while :; do i=$((i+1)); head -c 1M /dev/zero > f$i; done' >/dev/null 2>&1 </dev/null & echo started",
    );
    await waitFor(async () => !(await rootExec(env.workerId, 'ps -eo args')).includes('while :'), 30_000);
    const used = await usedMb(env.workerId, 'bg');
    console.log(`quota ${QUOTA_MB} MB: background writer stopped at ${used.toFixed(1)} MB`);
    expect(used).toBeGreaterThanOrEqual(QUOTA_MB);
    expect(used).toBeLessThan(1024);
    expect(code(await sb.run('bg', { action: 'create-file', filePath: 'x', content: 'x'.repeat(MB) }))).toBe(
      'disk_quota_exceeded',
    );
  });
});
