import { describe, expect, it } from 'vitest';
import type { TaskView } from '@research/contracts';
import { buildResult, formatResult, promptsFromText, replayPrompt, type TaskRecord } from './loadtest.js';
import { escapeHtml, histogramSvg, niceMax, renderReport, throughputSvg } from './report-html.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();

/** A completed task: created at c, started at s, finished at f (ms after T0), with steps of the given durations. */
function done(id: string, c: number, s: number, f: number, stepMs: number[]): TaskView {
  return {
    id,
    status: 'completed',
    prompt: 'p',
    createdAt: iso(c),
    startedAt: iso(s),
    finishedAt: iso(f),
    progress: { step: stepMs.length, maxSteps: 4, phase: 'done' },
    steps: stepMs.map((durationMs, index) => ({
      index,
      action: 'execute-command',
      status: 'completed',
      attempts: 1,
      exitCode: 0,
      durationMs,
    })),
    result: { summary: 'ok', files: [] },
  };
}

function records(): TaskRecord[] {
  return [
    { index: 0, id: 'a', submitStartMs: 0, submitEndMs: 10, view: done('a', 0, 100, 1_100, [200, 200]) },
    { index: 1, id: 'b', submitStartMs: 0, submitEndMs: 20, view: done('b', 10, 210, 2_010, [300, 300]) },
    {
      index: 2,
      id: 'c',
      submitStartMs: 5,
      submitEndMs: 25,
      view: { ...done('c', 20, 50, 500, []), status: 'failed', error: { code: 'timeout', message: 'x' } },
    },
    { index: 3, id: 'd', submitStartMs: 5, submitEndMs: 30, view: { ...done('d', 30, 30, 30, []), status: 'running' } },
    { index: 4, submitStartMs: 5, submitEndMs: 40, submitError: '503 redis_unavailable: Redis is unavailable' },
  ];
}

const run = {
  startMs: 0,
  submitEndMs: 40,
  endMs: 5_000,
  errors: { submitSamples: ['503 redis_unavailable: Redis is unavailable'], pollErrors: 0, submitRetries: 3 },
};

describe('buildResult', () => {
  const r = buildResult(records(), { url: 'http://127.0.0.1:3000', concurrency: 4, steps: 2 }, run);

  it('counts completed, failed (ended or refused) and lost (not final in time)', () => {
    expect(r).toMatchObject({
      tasks: 5,
      submitted: 4,
      completed: 2,
      failed: 2,
      lost: 1,
      failedByReason: { failed: 1, cancelled: 0, submitError: 1 },
    });
    expect(r.lostIds).toEqual(['d']);
    expect(r.failedIds).toEqual(['c']);
  });

  it('measures throughput from the first createdAt to the last finishedAt', () => {
    expect(r.windowSec).toBeCloseTo(2.01);
    expect(r.throughputTasksPerSec).toBeCloseTo(2 / 2.01);
    expect(r.stepsCompleted).toBe(4);
    expect(r.throughputStepsPerSec).toBeCloseTo(4 / 2.01);
    expect(r.submitRatePerSec).toBeCloseTo(4 / 0.04);
  });

  it('takes latencies from completed tasks and per-step overhead as (end to end − step time) / steps', () => {
    expect(r.latencyMs.queuedToStarted).toMatchObject({ count: 2, min: 100, max: 200, p50: 150 });
    expect(r.latencyMs.startedToFinished).toMatchObject({ min: 1_000, max: 1_800 });
    expect(r.latencyMs.endToEnd).toMatchObject({ count: 2, p50: 1_550, max: 2_000 });
    // a: (1100 − 400) / 2 = 350; b: (2000 − 600) / 2 = 700
    expect(r.perStepOverheadMs).toMatchObject({ min: 350, max: 700, mean: 525 });
    // once running — a: (1000 − 400) / 2 = 300; b: (1800 − 600) / 2 = 600
    expect(r.perStepRunOverheadMs).toMatchObject({ min: 300, max: 600 });
    expect(r.histogram.endToEndMs.reduce((s, b) => s + b.count, 0)).toBe(2);
    expect(r.series.completedPerSec.reduce((s, p) => s + p.count, 0)).toBe(2);
    expect(r.series.acceptedPerSec.reduce((s, p) => s + p.count, 0)).toBe(4);
  });

  it('has the JSON fields the contract names, on one line', () => {
    const line = JSON.stringify(r);
    expect(line).not.toContain('\n');
    const parsed = JSON.parse(line) as Record<string, unknown>;
    for (const k of ['tasks', 'completed', 'failed', 'lost', 'throughputTasksPerSec']) expect(parsed).toHaveProperty(k);
    expect(parsed).toHaveProperty('latencyMs.endToEnd.p50');
    expect(parsed).toHaveProperty('latencyMs.endToEnd.p95');
    expect(parsed).toHaveProperty('latencyMs.endToEnd.p99');
  });

  it('gives nulls, not errors, when nothing completed', () => {
    const empty = buildResult(
      [{ index: 0, submitStartMs: 0, submitEndMs: 1, submitError: 'x' }],
      { url: 'u', concurrency: 1, steps: 1 },
      run,
    );
    expect(empty).toMatchObject({ completed: 0, failed: 1, throughputTasksPerSec: 0 });
    expect(JSON.parse(JSON.stringify(empty)).latencyMs.endToEnd.p50).toBeNull();
    expect(renderReport(empty)).toContain('no completed tasks');
    expect(formatResult(empty)).toContain('–');
  });

  it('formats a table with every figure', () => {
    const text = formatResult(r);
    expect(text).toContain('submitted   4/5');
    expect(text).toContain('completed 2 · failed 2 (failed 1, cancelled 0, refused 1) · lost 1');
    expect(text).toContain('1.00 tasks/s · 1.99 steps/s');
    expect(text).toMatch(/end to end\s+1550\s+1955\s+1991\s+2000/);
    expect(text).toContain("lost (not finished within the run's budget): d");
  });
});

/** Balanced tags, quoted attributes, no stray `<`: enough to know a browser and an XML reader see the intended tree. */
function checkMarkup(html: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const voids = new Set(['meta', 'link', 'br', 'hr', 'img', 'input']);
  const body = html.replace(/^<!DOCTYPE html>/i, '').replace(/<style>[\s\S]*?<\/style>/, '<style></style>');
  const tag = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"<>]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const text = body.slice(last, m.index);
    if (text.includes('<') || text.includes('>')) problems.push(`stray bracket in text: ${text.slice(0, 60)}`);
    last = tag.lastIndex;
    const [, close, name, , selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open}>`);
    } else if (!selfClose && !voids.has(name!)) stack.push(name!);
  }
  const rest = body.slice(last);
  if (rest.includes('<')) problems.push(`unparsed markup: ${rest.slice(rest.indexOf('<'), rest.indexOf('<') + 60)}`);
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`);
  return problems;
}

describe('HTML report', () => {
  const r = buildResult(records(), { url: 'http://127.0.0.1:3000/<script>', concurrency: 4, steps: 2 }, run);
  const html = renderReport(r);

  it('is well-formed, self-contained markup', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(checkMarkup(html)).toEqual([]);
    expect(html).not.toMatch(/\b(src|href)=/);
    expect(html).not.toMatch(/<script/);
    expect(html).toContain('&lt;script&gt;');
  });

  it('contains the figures, a throughput chart and a latency histogram', () => {
    expect(html).toContain('<th scope="row">completed</th><td>2</td>');
    expect(html).toContain('<th scope="row">lost</th><td>1</td>');
    expect(html).toContain('1.00 tasks/s · 1.99 steps/s');
    expect(html).toMatch(/<th scope="row">end to end<\/th><td>2<\/td><td>1550<\/td><td>1955<\/td><td>1991<\/td>/);
    expect(html).toContain('aria-label="Throughput over time"');
    expect(html).toContain('aria-label="End-to-end latency histogram"');
    expect(html.match(/<polyline /g)).toHaveLength(2);
    expect(html.match(/<rect /g)?.length).toBeGreaterThan(0);
    expect(html).toContain('<code>d</code>');
  });

  it('charts scale to round maxima and escape their labels', () => {
    expect(niceMax(0.7)).toBe(1);
    expect(niceMax(17)).toBe(20);
    expect(niceMax(230)).toBe(250);
    expect(niceMax(0)).toBe(1);
    expect(checkMarkup(throughputSvg([{ tSec: 0, perSec: 3, count: 3 }], [], 1_000))).toEqual([]);
    expect(checkMarkup(histogramSvg([{ from: 0, to: 10, count: 1 }]))).toEqual([]);
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

describe('task prompts', () => {
  it('replay prompts hold K execute-command blocks', () => {
    const p = replayPrompt(3, 7);
    expect(p.match(/<daytona-execute>/g)).toHaveLength(3);
    expect(p).toContain('command="echo task 7 step 3"');
  });

  it('prompt files give one prompt per non-empty, non-comment line', () => {
    expect(promptsFromText('# prompts\nfirst\n\n  second  \r\nthird\\nline two\n')).toEqual([
      'first',
      'second',
      'third\nline two',
    ]);
  });
});
