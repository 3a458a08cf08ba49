import { execFileSync } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResearchClient } from '@research/client';
import { EXIT } from './args.js';
import { runLoadtest } from './loadtest.js';
import { cli, fakeWorker, KEY, playFinish, playStep, useApi, useTempDir } from '../test/api.js';

const api = useApi('cliops');
const dir = useTempDir('research-cli-ops-');

async function finished(prompt: string): Promise<string> {
  const { id } = await api.client.submit({ prompt });
  await api.store.lifecycle.start(id, { workerId: 'worker-cli' });
  await playStep(api.store, id, 0, 'python3 analysis.py');
  await playFinish(api.store, id, 'done');
  return id;
}

describe('research list, batch, download, delete', () => {
  it('batch submits a JSON Lines file and reports each line; list finds the tasks by tag, page by page', async () => {
    const tag = `cli-${Date.now()}`;
    const file = join(dir, 'tasks.jsonl');
    await writeFile(
      file,
      [
        JSON.stringify({ prompt: 'first of the batch', tags: [tag] }),
        '',
        JSON.stringify({ prompt: '', tags: [tag] }),
        JSON.stringify({ prompt: 'third of the batch', tags: [tag], idempotencyKey: `${tag}-3` }),
      ].join('\n'),
    );
    const batch = await cli(['batch', file], api.env).done;
    expect(batch.code).toBe(EXIT.failed);
    expect(batch.stderr).toBe('accepted 2, refused 1\n');
    const lines = batch.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^line 1\t[\w-]+$/);
    expect(lines[1]).toMatch(/^line 3\trefused invalid_request: .*prompt/);
    expect(lines[2]).toMatch(/^line 4\t[\w-]+$/);
    const [first, third] = [lines[0]!.split('\t')[1]!, lines[2]!.split('\t')[1]!];

    // One batch shares one createdAt, so which of the two comes first is the index's tie-break: the test takes either.
    const rowOf = (id: string) =>
      new RegExp(`^${id} +queued +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +${tag} +(first|third) of the batch$`);
    const page = await cli(['list', '--tag', tag, '--limit', '1'], api.env).done;
    expect(page.code).toBe(EXIT.ok);
    const [header, row, ...others] = page.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID +STATUS +CREATED +TAGS +PROMPT$/);
    expect(others).toEqual([]);
    const shown = row!.split(' ')[0]!;
    expect([first, third]).toContain(shown);
    expect(row).toMatch(rowOf(shown));
    const more = /^more: research list (.*)\n$/.exec(page.stderr);
    expect(more?.[1]).toMatch(new RegExp(`^--tag ${tag} --limit 1 --cursor \\S+$`));
    const rest = shown === first ? third : first;
    const next = await cli(['list', ...more![1]!.split(' ')], api.env).done;
    expect(next.stdout.trimEnd().split('\n').slice(1)).toEqual([expect.stringMatching(rowOf(rest))]);
    expect(next.stderr).toBe('');

    const all = await cli(['list', '--tag', tag, '--all', '--json', '--limit', '1'], api.env).done;
    expect(
      all.stdout
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id),
    ).toEqual([shown, rest]);
  });

  it('batch refuses a file with a line that is not JSON, naming it, and sends nothing', async () => {
    const tag = `cli-bad-${Date.now()}`;
    const file = join(dir, 'bad.jsonl');
    await writeFile(file, `${JSON.stringify({ prompt: 'fine', tags: [tag] })}\n{"prompt": "cut\n`);
    const { code, stdout, stderr } = await cli(['batch', file], api.env).done;
    expect(code).toBe(EXIT.usage);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`^research: ${file.replace(/[.]/g, '\\.')}:2: not JSON`));
    expect((await api.client.list({ tag })).items).toEqual([]);
  });

  it("download writes the task's archive; delete removes the task, after which it is unknown", async () => {
    const id = await finished('download and delete');
    const out = join(dir, 'archive.tar.gz');
    const download = await cli(['download', id, '-o', out], api.env).done;
    expect(download.code).toBe(EXIT.ok);
    expect(download.stderr).toMatch(new RegExp(`^wrote ${out.replace(/[.]/g, '\\.')} \\(2 files, \\d+ B\\)\n$`));
    expect(execFileSync('tar', ['-xzOf', out, `research-${id}/report.md`], { encoding: 'utf8' })).toBe(
      '# Report\n\nMarkets are up.\n',
    );
    expect((await readdir(dir)).filter((f) => f.endsWith('.part'))).toEqual([]);

    const deleted = await cli(['delete', id], api.env).done;
    expect(deleted).toMatchObject({ code: EXIT.ok, stdout: `deleted ${id}\n`, stderr: '' });
    const status = await cli(['status', id], api.env).done;
    expect(status.code).toBe(EXIT.notFound);
    expect((await cli(['download', id, '-o', join(dir, 'gone.tar.gz')], api.env).done).code).toBe(EXIT.notFound);
    expect(await readdir(dir)).not.toContain('gone.tar.gz');
  });

  it('delete of a running task is refused with the API message naming cancel', async () => {
    const { id } = await api.client.submit({ prompt: 'running, not deletable' });
    await api.store.lifecycle.start(id, { workerId: 'worker-cli' });
    const { code, stderr } = await cli(['delete', id], api.env).done;
    expect(code).toBe(EXIT.failed);
    expect(stderr).toMatch(/^research: .*cancel.* \(409 \w+\)\n$/);
    expect((await api.client.get(id)).status).toBe('running');
  });

  it('loadtest --batch N submits in batches of N and follows every task', async () => {
    const worker = fakeWorker(() => api, api.prefix);
    const paths: string[] = [];
    const recording: typeof fetch = (input, init) => {
      if (init?.method === 'POST') paths.push(new URL(String(input)).pathname);
      return fetch(input, init);
    };
    try {
      const r = await runLoadtest(
        {
          url: api.url,
          key: KEY,
          tasks: 7,
          concurrency: 2,
          batch: 3,
          steps: 1,
          pollIntervalMs: 100,
          timeoutSeconds: 20,
        },
        { client: new ResearchClient({ baseUrl: api.url, apiKey: KEY, fetch: recording }) },
      );
      expect(r).toMatchObject({ tasks: 7, submitted: 7, completed: 7, failed: 0, lost: 0, batch: 3 });
      expect(paths).toEqual(['/v1/jobs/batch', '/v1/jobs/batch', '/v1/jobs/batch']);
    } finally {
      await worker.stop();
    }
  });
});
