/**
 * The built-in research plan on a sandbox image with python3 and its standard library only, as
 * the production image promises (issue: on an image without pandas and numpy the task ended
 * `completed` with a report that quoted no figures). The image is research-sandbox:latest with
 * Debian's python3-numpy and python3-pandas removed, built locally under a tag of its own.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System, requireServices } from '@research/testing';
import { must, sh } from './support.js';

const IMAGE = `research-sandbox-stdlib-test:${randomUUID().slice(0, 8)}`;
let sys: System;

beforeAll(async () => {
  await requireServices();
  const dockerfile = [
    'FROM research-sandbox:latest',
    'USER root',
    'RUN dpkg --purge --force-depends python3-pandas python3-pandas-lib python3-numpy >/dev/null 2>&1 || true; \\',
    '    rm -rf /usr/lib/python3/dist-packages/numpy* /usr/lib/python3/dist-packages/pandas*',
  ].join('\n');
  await must('docker', ['build', '-q', '--network', 'none', '-t', IMAGE, '-'], { input: dockerfile });
  sys = new System();
  await sys.startApi();
  await sys.startWorker(`stdlib-${sys.id}`, { SANDBOX_IMAGE: IMAGE });
}, 300_000);

afterAll(async () => {
  await sys?.close();
  await sh('docker', ['rmi', '-f', IMAGE]);
});

describe('the built-in research plan on an image without pandas and numpy', () => {
  it('the image really lacks them', async () => {
    for (const module of ['numpy', 'pandas']) {
      const r = await sh('docker', ['run', '--rm', '--network', 'none', IMAGE, 'python3', '-c', `import ${module}`]);
      expect(r.code, module).not.toBe(0);
      expect(r.stderr).toContain(`No module named '${module}'`);
    }
  });

  it('completes, and its report quotes every figure of results.json', async () => {
    const id = await sys.submit({ prompt: 'Research current market conditions and investment opportunities' });
    const view = await sys.waitFinal(id);
    expect(view.status).toBe('completed');
    expect(view.steps.find((s) => s.action === 'execute-command')).toMatchObject({ status: 'completed', exitCode: 0 });

    const results = (await (await sys.request(`/v1/jobs/${id}/files/results.json`)).json()) as {
      source: string;
      tickers: Record<string, Record<string, number>>;
      best: { ticker: string; totalReturnPct: number };
      worst: { ticker: string; totalReturnPct: number };
    };
    expect(results.source).toMatch(/Python random, seed 42/);
    expect(Object.keys(results.tickers)).toHaveLength(5);
    const report = await (await sys.request(`/v1/jobs/${id}/files/report.md`)).text();
    expect(report).not.toMatch(/quotes no figures/);
    expect(report).toContain(`Best performer: **${results.best.ticker}**`);
    expect(report).toContain(`Worst performer: **${results.worst.ticker}**`);
    // Python prints whole floats as 54.0; the report quotes them as printed.
    const py = (n: number) => (Number.isInteger(n) ? n.toFixed(1) : String(n));
    for (const [ticker, f] of Object.entries(results.tickers)) {
      const row = report.split('\n').find((l) => l.startsWith(`| ${ticker} |`));
      expect(row, ticker).toBe(
        `| ${ticker} | ${py(f.startPrice!)} | ${py(f.endPrice!)} | ${py(f.totalReturnPct!)} | ${py(f.annualVolatilityPct!)} | ${py(f.maxDrawdownPct!)} | ${py(f.sharpe!)} |`,
      );
    }
    const prices = await (await sys.request(`/v1/jobs/${id}/files/data/prices.csv`)).text();
    expect(prices.trim().split('\n')).toHaveLength(253);
    const todo = await (await sys.request(`/v1/jobs/${id}/files/todo.md`)).text();
    expect(todo).not.toMatch(/- \[ \]/);
  });
});
