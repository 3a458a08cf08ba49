import type { TaskView } from '@research/contracts';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CountingListener,
  System,
  callsPrompt,
  countingListener,
  requireServices,
  until,
} from '@research/testing';
import { commandResult, stepOutcomes } from './fakes.js';
import { CSV, RESULT_PATHS, startLoopbackInternet, type LoopbackInternet } from './loopback-internet.js';

/**
 * Research with sources on the real stack (API, a worker process, its Docker sandbox, Redis)
 * against a loopback "internet": a SearXNG search API and a site, each reachable only through
 * an explicit EGRESS_ALLOW_HOSTS entry for its port. A counting listener on another loopback
 * port stands for everything the policy must refuse: it must see no connection at all.
 */

let sys: System;
let net: LoopbackInternet;
let counter: CountingListener;
const REDIS_PORT = Number(new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').port || 6379);

beforeAll(async () => {
  await requireServices();
  counter = await countingListener();
  const c = counter.port;
  net = await startLoopbackInternet({
    '/to-loopback': `http://127.0.0.1:${c}/`,
    '/to-redis': `http://127.0.0.1:${REDIS_PORT}/`,
    '/to-v6': `http://[::1]:${c}/`,
    '/to-hex': `http://0x7f000001:${c}/`,
    '/to-file': 'file:///etc/passwd',
  });
  sys = new System({ tag: 'web' });
  await sys.startApi();
  await sys.startWorker(`web-${sys.id}`, {
    WEB_SEARCH_PROVIDER: 'searxng',
    WEB_SEARCH_URL: net.searchOrigin,
    // The decoy entries open the counter's and Redis' ports for a host that is not them, so the
    // loopback notations below pass the port check and meet the address rule itself.
    EGRESS_ALLOW_HOSTS: [
      `127.0.0.1:${net.searchPort}`,
      `127.0.0.1:${net.sitePort}`,
      `decoy.example:${c}`,
      `decoy.example:${REDIS_PORT}`,
    ].join(','),
    WEB_MAX_FETCHES_PER_TASK: '50',
  });
});

afterAll(async () => {
  await sys?.close();
  await net?.close();
  await counter?.close();
});

async function file(id: string, path: string): Promise<string> {
  const res = await sys.request(`/v1/jobs/${id}/files/${path}`);
  expect(res.status, `GET files/${path}`).toBe(200);
  return res.text();
}

async function filesOf(id: string): Promise<string[]> {
  const res = await sys.request(`/v1/jobs/${id}/files`);
  return ((await res.json()) as { files: { path: string }[] }).files.map((f) => f.path);
}

describe('research with sources over a loopback internet', () => {
  it('searches, fetches three pages into sources/, analyses the fetched CSV in the sandbox and cites the URLs; the injected instruction changes nothing', async () => {
    const prompt = 'Research current market conditions and investment opportunities';
    const id = await sys.submit({ prompt });
    const view = await sys.waitFinal(id, 240_000);
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    expect(net.queries).toContain(prompt);

    const actions = view.steps.map((s) => s.action);
    expect(actions.filter((a) => a === 'web-search')).toHaveLength(1);
    expect(actions.filter((a) => a === 'web-fetch')).toHaveLength(3);
    expect(view.steps.every((s) => s.status === 'completed')).toBe(true);
    const top = RESULT_PATHS.slice(0, 3).map((p) => `${net.siteOrigin}${p}`);
    // The fourth result was never fetched; the three were, each once.
    expect(net.fetched.filter((p) => RESULT_PATHS.includes(p)).sort()).toEqual(RESULT_PATHS.slice(0, 3).sort());

    // Each page is in the workspace as sources/NNN-<slug>.<ext> with its .meta.json, via the files API.
    const paths = await filesOf(id);
    const sources = paths.filter((p) => /^sources\/\d{3}-[a-z0-9-]+\.[a-z]+$/.test(p));
    expect(sources).toHaveLength(3);
    for (const s of sources) expect(paths).toContain(`${s.replace(/\.[a-z]+$/, '')}.meta.json`);
    const csv = sources.find((s) => s.endsWith('.csv'));
    expect(csv).toBeDefined();
    expect(await file(id, csv!)).toBe(CSV);
    const metas = await Promise.all(
      sources.map(
        async (s) => JSON.parse(await file(id, `${s.replace(/\.[a-z]+$/, '')}.meta.json`)) as Record<string, unknown>,
      ),
    );
    expect(metas.map((m) => m.url).sort()).toEqual([...top].sort());
    for (const m of metas) {
      expect(m.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(typeof m.fetchedAt).toBe('string');
    }
    const article = await file(id, sources.find((s) => s.includes('markets'))!);
    expect(article).toContain('Equity markets were little changed');

    // The analysis ran in the sandbox over the fetched CSV: its figures are the CSV's.
    const python = view.steps.find((s) => s.action === 'execute-command');
    expect(python?.exitCode).toBe(0);
    const analysis = JSON.parse(await file(id, 'source_analysis.json')) as {
      sources: {
        path: string;
        kind: string;
        rows?: number;
        columns?: { name: string; first: number; last: number }[];
      }[];
    };
    const table = analysis.sources.find((s) => s.path === csv);
    expect(table).toMatchObject({ kind: 'table', rows: 4 });
    expect(table?.columns?.find((c) => c.name === 'index')).toMatchObject({ first: 100, last: 110.5 });

    const report = await file(id, 'report.md');
    for (const url of top) expect(report).toContain(url);
    // The planted instruction: nothing of it was done or repeated as the report's own words.
    expect(report).not.toContain('BUY ACME NOW');
    expect(report).not.toContain('169.254');
    // One command ran in the whole task, the plan's analysis; the page's `curl` never did.
    expect(view.steps.filter((st) => st.action === 'execute-command')).toHaveLength(1);
  });

  it('places input files in the task directory before the first step, text and bytes exactly', async () => {
    const raw = Buffer.from([0, 1, 0xfe, 0xff, 0x80]);
    const id = await sys.submit({
      prompt: callsPrompt([
        { action: 'execute-command', command: 'cat data/in.csv && od -An -tx1 raw.bin | tr -s " " && ls -l data' },
      ]),
      files: [
        { path: 'data/in.csv', content: 'a,b\n1,2\n' },
        { path: 'raw.bin', content: raw.toString('base64'), encoding: 'base64' },
      ],
    });
    const view = await sys.waitFinal(id);
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    const [out] = stepOutcomes(await sys.events(id));
    const result = commandResult(out);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('a,b\n1,2\n');
    expect(result.stdout).toContain(' 00 01 fe ff 80');
    expect(await filesOf(id)).toEqual(expect.arrayContaining(['data/in.csv', 'raw.bin']));
    expect(await file(id, 'data/in.csv')).toBe('a,b\n1,2\n');
  });

  it('refuses every hostile destination with egress_denied naming the rule, and opens no connection to any', async () => {
    const c = counter.port;
    const s = net.siteOrigin;
    // Each URL with the rule that must refuse it.
    const table: [string, string][] = [
      [`http://127.0.0.1:${c}/`, 'address'],
      [`http://localhost:${c}/`, 'host-name'],
      [`http://2130706433:${c}/`, 'address'],
      [`http://0x7f000001:${c}/`, 'address'],
      [`http://0177.0.0.1:${c}/`, 'address'],
      [`http://0x7f.1:${c}/`, 'address'],
      [`http://127.1:${c}/`, 'address'],
      [`http://0.0.0.0:${c}/`, 'address'],
      [`http://[::1]:${c}/`, 'address'],
      [`http://[0:0:0:0:0:0:0:1]:${c}/`, 'address'],
      [`http://[::ffff:127.0.0.1]:${c}/`, 'address'],
      [`http://[::ffff:7f00:1]:${c}/`, 'address'],
      [`http://[::]:${c}/`, 'address'],
      [`http://127.0.0.1:${REDIS_PORT}/`, 'address'],
      // A port no entry names is refused before any address is looked at.
      [`http://127.0.0.1:${c + 1 === REDIS_PORT ? c + 2 : c + 1}/`, 'port'],
      [`${s}/to-loopback`, 'address'],
      [`${s}/to-redis`, 'address'],
      [`${s}/to-v6`, 'address'],
      [`${s}/to-hex`, 'address'],
      [`${s}/to-file`, 'scheme'],
      ['file:///etc/passwd', 'scheme'],
      [`ftp://127.0.0.1:${c}/`, 'scheme'],
      [`gopher://127.0.0.1:${c}/_`, 'scheme'],
      ['data:text/plain,hello', 'scheme'],
    ];
    const hostile = table.map(([url]) => url);
    const id = await sys.submit({
      prompt: callsPrompt(hostile.map((url) => ({ action: 'web-fetch', url }))),
      maxSteps: 40,
    });
    const view = await sys.waitFinal(id);
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    const outcomes = stepOutcomes(await sys.events(id));
    expect(outcomes).toHaveLength(hostile.length);
    const codes = outcomes.map((o, i) => [hostile[i], o.ok ? 'fetched' : o.error.code]);
    expect(codes).toEqual(hostile.map((url) => [url, 'egress_denied']));
    const rules = outcomes.map((o, i) => [
      hostile[i],
      o.ok ? '' : /^egress denied \(([a-z-]+)/.exec(o.error.message)?.[1],
    ]);
    expect(rules).toEqual(table);
    // An address refusal names its range: every loopback spelling is loopback, however written.
    for (const [i, o] of outcomes.entries())
      if (!o.ok && table[i]?.[1] === 'address')
        expect(o.error.message).toMatch(/^egress denied \(address: [^)]*(loopback|unspecified)/);
    // The step view carries the code too, for a client that reads no events.
    expect(view.steps.map((st: TaskView['steps'][number]) => st.error?.code)).toEqual(
      hostile.map(() => 'egress_denied'),
    );
    expect(counter.connections()).toBe(0);
    // The control: the listener does count a connection that is made.
    await new Promise<void>((resolve, reject) =>
      createConnection(counter.port, '127.0.0.1')
        .once('close', () => resolve())
        .once('error', reject),
    );
    await until('the counting listener to see the control connection', () => counter.connections() === 1, 5_000);
    // The redirects were asked of the allowed site (their first hop), and nothing past it.
    expect(net.fetched).toEqual(expect.arrayContaining(['/to-loopback', '/to-redis', '/to-v6', '/to-hex', '/to-file']));
    // Nothing was saved for a refused fetch.
    expect((await filesOf(id)).filter((p) => p.startsWith('sources/'))).toEqual([]);
  });
});

describe('the per-task web budget lives in Redis', () => {
  it('a worker that takes a task over after kill -9 counts on from the fetches the dead one made', async () => {
    // The worker of the tests above leaves; two workers with a budget of one fetch per task take its place.
    for (const proc of [...sys.workers]) await sys.stop(proc);
    const env = {
      WEB_SEARCH_PROVIDER: 'searxng',
      WEB_SEARCH_URL: net.searchOrigin,
      EGRESS_ALLOW_HOSTS: `127.0.0.1:${net.searchPort},127.0.0.1:${net.sitePort}`,
      WEB_MAX_FETCHES_PER_TASK: '1',
      WORKER_LOCK_MS: '3000',
      WORKER_STALLED_INTERVAL_MS: '1000',
    };
    const victim = await sys.startWorker(`web-victim-${sys.id}`, { ...env, WORKER_CONCURRENCY: '1' });
    const count = (path: string) => net.fetched.filter((p) => p === path).length;
    const before = { article: count('/markets/steady'), csv: count('/data/index.csv') };
    const id = await sys.submit({
      prompt: callsPrompt([
        { action: 'web-fetch', url: `${net.siteOrigin}/markets/steady` },
        { action: 'execute-command', command: 'sleep 4 && echo slept' },
        { action: 'web-fetch', url: `${net.siteOrigin}/data/index.csv` },
      ]),
    });
    await sys.waitFor(
      id,
      (v) => v.workerId === `web-victim-${sys.id}` && v.steps.some((st) => st.index === 1 && st.status === 'running'),
    );
    await sys.stop(victim, 'SIGKILL');
    await sys.startWorker(`web-rescuer-${sys.id}`, env);
    const view = await sys.waitFinal(id, 90_000);
    expect(view.status, JSON.stringify(view.error)).toBe('completed');
    expect(view.workerId).toBe(`web-rescuer-${sys.id}`);
    const outcomes = stepOutcomes(await sys.events(id));
    expect(outcomes[0]?.ok).toBe(true);
    const last = outcomes[2];
    expect(last && !last.ok && last.error.code).toBe('egress_denied');
    expect(last && !last.ok && last.error.message).toMatch(/^egress denied \(fetch-budget\)/);
    // The fetch the dead worker made was neither made again nor forgotten.
    expect(count('/markets/steady') - before.article).toBe(1);
    expect(count('/data/index.csv') - before.csv).toBe(0);
    const used = await sys.store.web.used(id);
    expect(used[`web:${id}:bytes`]).toBeGreaterThan(0);
    expect(used[`web:${id}:fetches`]).toBeGreaterThanOrEqual(2);
  });
});
