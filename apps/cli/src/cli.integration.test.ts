import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from './args.js';
import { freePort } from '@research/testing';
import { KEY, cli, playFinish, playStep, useApi, useTempDir } from '../test/api.js';

const api = useApi('clitest');
const dir = useTempDir('research-cli-');

async function submitted(prompt: string): Promise<string> {
  return (await api.client.submit({ prompt })).id;
}

describe('research against the real API', () => {
  it('submit --follow shows the steps live and ends with the summary and where the report is', async () => {
    const run = cli(['submit', 'Research current market conditions', '--follow', '--max-steps', '3'], api.env);
    const [, id] = await run.waitFor(/submitted task (\S+)/);
    await run.waitFor(/following \S+ \(up to 3 steps\)/);
    await api.store.lifecycle.start(id!, { workerId: 'worker-test' });
    await playStep(api.store, id!, 0, 'python3 analysis.py');
    await run.waitFor(/step 1\/3 execute-command python3 analysis\.py/);
    await playStep(api.store, id!, 1, 'cat results.txt');
    await playFinish(api.store, id!, 'Markets are up; see report.md.');
    const { code, stdout, stderr } = await run.done;
    expect(stderr).toBe('');
    expect(code).toBe(EXIT.ok);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toContain('running on worker-test');
    expect(lines).toContain('step 2/3 execute-command cat results.txt');
    expect(lines).toContain('finished (answer)');
    expect(lines.filter((l) => l.startsWith('  exit 0'))).toHaveLength(2);
    expect(stdout).toMatch(/completed in [\d.]+ m?s · 2 steps · task /);
    expect(stdout).toContain('Summary:\n  Markets are up; see report.md.');
    expect(stdout).toMatch(/Files:\n {2}todo\.md {2}\d+ B\n {2}report\.md {2}\d+ B/);
    expect(lines.slice(-2)).toEqual([
      `Report: research files ${id} report.md`,
      `        ${api.url}/v1/jobs/${id}/files/report.md`,
    ]);
  });

  it('submit prints the id; status shows the task; --json prints the contract shapes', async () => {
    const sub = await cli(['submit', 'a quick one'], api.env).done;
    expect(sub.code).toBe(EXIT.ok);
    const id = sub.stdout.trim();
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(sub.stderr).toContain(`research follow ${id}`);

    const status = await cli(['status', id], api.env).done;
    expect(status.code).toBe(EXIT.ok);
    expect(status.stdout).toContain(`task      ${id}`);
    expect(status.stdout).toContain('status    queued');
    expect(status.stdout).toContain('prompt    a quick one');

    const json = await cli(['status', id, '--json'], api.env).done;
    expect(JSON.parse(json.stdout)).toMatchObject({ id, status: 'queued', prompt: 'a quick one', steps: [] });
    const accepted = await cli(['submit', 'json please', '--json'], api.env).done;
    expect(JSON.parse(accepted.stdout)).toMatchObject({ status: 'queued', links: expect.any(Object) });
  });

  it('submit --file sends local files (text as utf8, other bytes as base64) to their task paths', async () => {
    await writeFile(join(dir, 'prices.csv'), 'day,price\n1,10\n');
    await writeFile(join(dir, 'raw.bin'), Buffer.from([0, 0xff, 0xfe, 1]));
    const sub = await cli(
      ['submit', 'with files', '--file', join(dir, 'prices.csv'), '--file', `${join(dir, 'raw.bin')}:inputs/raw.bin`],
      api.env,
    ).done;
    expect(sub.stderr).toContain('research follow');
    expect(sub.code).toBe(EXIT.ok);
    const id = sub.stdout.trim();
    expect(await api.store.inputs.load(id)).toEqual([
      { path: 'prices.csv', content: 'day,price\n1,10\n', encoding: 'utf8' },
      { path: 'inputs/raw.bin', content: Buffer.from([0, 0xff, 0xfe, 1]).toString('base64'), encoding: 'base64' },
    ]);

    const missing = await cli(['submit', 'x', '--file', join(dir, 'nope.csv')], api.env).done;
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.stderr).toContain(`cannot read --file ${join(dir, 'nope.csv')}: ENOENT`);
    const outside = await cli(['submit', 'x', '--file', `${join(dir, 'prices.csv')}:../escape.csv`], api.env).done;
    expect(outside.code).toBe(EXIT.usage);
    expect(outside.stderr).toMatch(/400 invalid_request.*files\.0\.path.*outside the task's workspace/);
  });

  it('files lists the files, prints one, and writes one with -o', async () => {
    const id = await submitted('files test');
    await api.store.lifecycle.start(id, { workerId: 'worker-test' });
    await playFinish(api.store, id, 'done');

    const list = await cli(['files', id], api.env).done;
    expect(list.code).toBe(EXIT.ok);
    expect(list.stdout.trim().split('\n')).toEqual(['todo.md\t18 B', 'report.md\t26 B']);

    const content = await cli(['files', id, 'report.md'], api.env).done;
    expect(content.stdout).toBe('# Report\n\nMarkets are up.\n');

    const out = join(dir, 'report.md');
    const saved = await cli(['files', id, 'report.md', '-o', out], api.env).done;
    expect(saved.code).toBe(EXIT.ok);
    expect(saved.stderr).toContain(`wrote ${out}`);
    expect(await readFile(out, 'utf8')).toBe('# Report\n\nMarkets are up.\n');

    const missing = await cli(['files', id, 'nope.md'], api.env).done;
    expect(missing.code).toBe(EXIT.notFound);
    expect(missing.stderr).toMatch(/^research: file nope\.md of task \S+ not found \(404\)/);
  });

  it('cancel asks the API to stop the task', async () => {
    const id = await submitted('cancel me');
    const res = await cli(['cancel', id], api.env).done;
    expect(res.code).toBe(EXIT.ok);
    expect(res.stdout).toContain(`cancel requested for ${id}`);
    expect(await api.store.lifecycle.status(id)).toBe('cancelled'); // a queued task is cancelled by the API itself
  });

  it('follow of a task that ends failed exits 1 and shows the error', async () => {
    const id = await submitted('fail me');
    await api.store.lifecycle.start(id, { workerId: 'worker-test' });
    await api.store.lifecycle.transition(id, 'failed', {
      error: { code: 'timeout', message: 'task exceeded its 60 s budget' },
      result: { summary: 'Stopped.', files: [] },
    });
    const res = await cli(['follow', id], api.env).done;
    expect(res.code).toBe(EXIT.failed);
    expect(res.stdout).toContain('error: timeout: task exceeded its 60 s budget');
    expect(res.stdout).toContain(`Files: research files ${id}`);
  });
});

describe('error messages', () => {
  it('wrong key: says the API refused the key, exit 3', async () => {
    const res = await cli(['status', 'whatever'], { ...api.env, RESEARCH_API_KEY: 'wrong' }).done;
    expect(res.code).toBe(EXIT.auth);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe(
      `research: the API at ${api.url} refused the key (401 unauthorized): check RESEARCH_API_KEY or --key\n`,
    );
  });

  it('missing key: says how to give one, sends nothing, exit 3', async () => {
    const res = await cli(['submit', 'x'], { RESEARCH_API_URL: api.url }).done;
    expect(res.code).toBe(EXIT.auth);
    expect(res.stderr).toBe(
      'research: no API key: set RESEARCH_API_KEY or pass --key (`npm run up` prints the key it generated)\n',
    );
  });

  it('nothing listening: says the API is not running there and hints npm run up, exit 5', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const res = await cli(['status', 'x', '--url', url], { RESEARCH_API_KEY: KEY }).done;
    expect(res.code).toBe(EXIT.unreachable);
    expect(res.stderr).toBe(
      `research: cannot connect to the API at ${url} (connection refused): is it running? Start it with \`npm run up\`, or point RESEARCH_API_URL / --url at it\n`,
    );
  });

  it('unknown task: 404, exit 4', async () => {
    const res = await cli(['status', 'no-such-task'], api.env).done;
    expect(res.code).toBe(EXIT.notFound);
    expect(res.stderr).toMatch(/^research: task no-such-task not found \(404\): .+\n$/);
  });

  it("invalid request: shows the API's validation message, exit 2", async () => {
    const res = await cli(['submit', 'x', '--max-steps', '100000'], api.env).done;
    expect(res.code).toBe(EXIT.usage);
    expect(res.stderr).toMatch(
      /^research: the API rejected the request \(400 \w+\): invalid request body: maxSteps: .+\n$/,
    );
    const empty = await cli(['submit', '   '], api.env).done;
    expect(empty.code).toBe(EXIT.usage);
    expect(empty.stderr).toContain('prompt must not be empty');
  });

  it('exactly one line per error, with no stack trace', async () => {
    const res = await cli(['status', 'x'], { ...api.env, RESEARCH_API_KEY: 'wrong' }).done;
    expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(res.stderr).not.toMatch(/\bat .+:\d+:\d+/);
  });
});
