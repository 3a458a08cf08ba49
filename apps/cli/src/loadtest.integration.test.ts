import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLoadtest } from './loadtest.js';
import { fakeWorker, KEY, loadtestCli, useApi, useTempDir } from '../test/api.js';

const api = useApi('clitest');
const dir = useTempDir('research-loadtest-');

describe('loadtest against the real API', () => {
  it('submits N K-step tasks, follows them, and counts completed, failed and lost', async () => {
    const worker = fakeWorker(
      () => api,
      api.prefix,
      (m) => (m?.index === 4 ? 'fail' : m?.index === 5 ? 'hang' : 'complete'),
    );
    try {
      const submittedIds: string[] = [];
      const r = await runLoadtest(
        { url: api.url, key: KEY, tasks: 6, concurrency: 3, steps: 2, pollIntervalMs: 100, timeoutSeconds: 4 },
        { onSubmitted: (id) => submittedIds.push(id) },
      );
      expect(submittedIds).toHaveLength(6);
      expect(r).toMatchObject({
        tasks: 6,
        submitted: 6,
        completed: 4,
        failed: 1,
        lost: 1,
        stepsCompleted: 8,
        mode: { kind: 'replay', steps: 2 },
      });
      expect(r.failedIds).toHaveLength(1);
      expect(r.lostIds).toHaveLength(1);
      expect(r.latencyMs.endToEnd.count).toBe(4);
      expect(r.latencyMs.endToEnd.p50).toBeGreaterThanOrEqual(0);
      expect(r.latencyMs.queuedToStarted.count).toBe(4);
      expect(r.throughputTasksPerSec).toBeGreaterThan(0);
      expect(r.throughputStepsPerSec).toBeCloseTo(r.throughputTasksPerSec * 2);
      expect(r.perStepOverheadMs.count).toBe(4);
      expect(r.submitRatePerSec).toBeGreaterThan(0);
      // Each task went in once (the idempotency key guards retries) with the replay prompt and a matching step budget.
      const request = await api.store.records.request(submittedIds[0]!);
      expect(request?.maxSteps).toBe(3);
      expect(request?.prompt.match(/<daytona-execute>/g)).toHaveLength(2);
    } finally {
      await worker.stop();
    }
  });

  it('`loadtest --json --report DIR` prints one JSON line and writes loadtest.json and report.html', async () => {
    const worker = fakeWorker(() => api, api.prefix);
    try {
      const out = join(dir, 'report');
      const res = await loadtestCli([
        '--url',
        api.url,
        '--key',
        KEY,
        '--tasks',
        '5',
        '--concurrency',
        '2',
        '--steps',
        '1',
        '--poll-interval',
        '100',
        '--json',
        '--report',
        out,
      ]);
      expect(res.code).toBe(0);
      const lines = res.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      const json = JSON.parse(lines[0]!) as Record<string, unknown>;
      expect(json).toMatchObject({ tasks: 5, completed: 5, failed: 0, lost: 0 });
      expect(json.throughputTasksPerSec).toBeGreaterThan(0);
      expect(json).toHaveProperty('latencyMs.endToEnd.p50');
      expect(json).toHaveProperty('latencyMs.endToEnd.p95');
      expect(json).toHaveProperty('latencyMs.endToEnd.p99');
      expect(JSON.parse(await readFile(join(out, 'loadtest.json'), 'utf8'))).toEqual(json);
      const html = await readFile(join(out, 'report.html'), 'utf8');
      expect(html).toContain('<th scope="row">completed</th><td>5</td>');
      expect(html).toContain('aria-label="Throughput over time"');
    } finally {
      await worker.stop();
    }
  });

  it('a wrong key stops the run at once with one line, exit 3', async () => {
    const res = await loadtestCli(['--url', api.url, '--key', 'wrong', '--tasks', '5']);
    expect(res.code).toBe(3);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe(
      `loadtest: the API at ${api.url} refused the key (401 unauthorized): check RESEARCH_API_KEY or --key\n`,
    );
  });
});
