import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { containerWith, rootExec } from './docker-exec.js';
import { block } from '@research/testing';
import { useSystem } from './use-system.js';
import { commandResult, refusal, stepOutcomes } from './fakes.js';

/**
 * A task's footprint is bounded: its disk use by SANDBOX_TASK_DISK_MB (a command that writes past
 * it is stopped with `disk_quota_exceeded`, which the model and the task view both get), and the
 * file list kept after it by the export caps, while other tasks in the same container go on.
 */
const workerId = `footprint-${randomUUID().slice(0, 8)}`;
const QUOTA_MB = 64;

const sys = useSystem(async (sys) => {
  await sys.startApi();
  await sys.startWorker(workerId, { SANDBOX_TASK_DISK_MB: String(QUOTA_MB), WORKER_CONCURRENCY: '4' });
});

describe('per-task disk quota', () => {
  it('stops a task writing past it with disk_quota_exceeded in its outcome and its view; a neighbour in the same container completes; the task can still clean up', async () => {
    const hog = await sys.submit({
      prompt: [
        block({ action: 'execute-command', command: 'head -c 1G /dev/zero > big; echo wrote' }),
        block({ action: 'create-file', filePath: 'notes.md', content: 'x'.repeat(64 * 1024) }),
        block({ action: 'execute-command', command: 'rm big && echo freed' }),
        block({ action: 'create-file', filePath: 'notes.md', content: 'after cleaning up' }),
      ].join('\n'),
    });
    const neighbour = await sys.submit({
      prompt: block({ action: 'execute-command', command: 'head -c 40M /dev/zero > data && wc -c < data' }),
    });
    const [vh, vn] = await Promise.all([sys.waitFinal(hog), sys.waitFinal(neighbour)]);

    expect(vh.status).toBe('completed');
    const o = stepOutcomes(await sys.events(hog));
    expect(refusal(o[0])).toBe('disk_quota_exceeded');
    expect(o[0]?.ok ? '' : o[0]?.error.message).toMatch(new RegExp(`disk quota is ${QUOTA_MB}\\.0 MB`));
    expect(refusal(o[1])).toBe('disk_quota_exceeded');
    expect(commandResult(o[2]).stdout.trim()).toBe('freed');
    expect(o[3]?.ok).toBe(true);
    // The task view says which steps were refused, and why.
    expect(vh.steps.map((s) => s.error?.code)).toEqual([
      'disk_quota_exceeded',
      'disk_quota_exceeded',
      undefined,
      undefined,
    ]);
    expect(await (await sys.request(`/v1/jobs/${hog}/files/notes.md`)).text()).toBe('after cleaning up');

    expect(vn.status).toBe('completed');
    expect(commandResult(stepOutcomes(await sys.events(neighbour))[0]).stdout.trim()).toBe(String(40 * 1024 * 1024));
    expect(vn.steps[0]?.error).toBeUndefined();
  });

  it('stops many files written in a loop too, each under the budget RLIMIT_FSIZE gives a file', async () => {
    const id = await sys.submit({
      prompt: block({
        action: 'execute-command',
        command: 'for i in $(seq 1 64); do head -c 8M /dev/zero > f$i; done; echo done',
      }),
    });
    const view = await sys.waitFinal(id);
    expect(view.steps[0]?.error?.code).toBe('disk_quota_exceeded');
    const du = await rootExec(
      await containerWith(`research.worker=${workerId}`),
      `du -s -B1 /workspace/${id} | cut -f1`,
    );
    const usedMb = Number(du.trim()) / 1024 / 1024;
    console.log(`quota ${QUOTA_MB} MB: 64 files of 8 MB written in a loop were stopped at ${usedMb.toFixed(1)} MB`);
    expect(usedMb).toBeLessThan(512);
  });
});

describe('the file list a task keeps', () => {
  it('stays bounded for a task of 100,000 files, and so does its view', async () => {
    const id = await sys.submit({
      prompt: block({
        action: 'execute-command',
        command: 'mkdir d && cd d && seq -w 1 100000 | xargs touch && ls | wc -l',
        timeoutMs: 120_000,
      }),
    });
    const view = await sys.waitFinal(id, 300_000);
    expect(view.status).toBe('completed');
    expect(view.result?.files).toHaveLength(5_000);
    expect(view.result?.files[0]).toEqual({ path: 'd/000001', size: 0 });
    const raw = await (await sys.request(`/v1/jobs/${id}`)).text();
    console.log(`a 100,000-file task: GET /v1/jobs/:id is ${raw.length} bytes`);
    expect(raw.length).toBeLessThan(256 * 1024);
  });
});
