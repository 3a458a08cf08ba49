/**
 * docker-compose.yml brought up for real, as a user without a registry would: the app image built
 * from the root Dockerfile with no network (deploy/build-app-image.sh --offline), on the base
 * images that deploy/build-base-images.sh makes from Debian's packages; the stack under a project
 * name, sandbox volume and loopback ports of its own; `--scale worker=3`; 30 tasks through the API.
 * Traffic: this test talks to 127.0.0.1 only; the stack's containers talk to each other on the
 * network compose creates for the project, and the workers to the engine through its socket.
 */
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import type { TaskView } from '@research/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, requireServices, sleep } from '@research/testing';
import { ROOT, must, secondsSince, sh } from './support.js';

const run = randomUUID().slice(0, 8);
const PROJECT = `research-deploy-${run}`;
const IMAGE = `research-jobs:deploy-test-${run}`;
const VOLUME = `research-deploy-${run}`;
const API_KEY = `key-${randomUUID()}`;
const DASHBOARD_PASSWORD = randomUUID();
const WORKERS = 3;
const TASKS = 30;
const docker = new Docker();
const timings: Record<string, number> = {};
let apiPort = 0;
let dashboardPort = 0;
let wentDown = false;

const composeEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  RESEARCH_IMAGE: IMAGE,
  PUBLISH_ADDRESS: '127.0.0.1',
  API_HOST_PORT: String(apiPort),
  DASHBOARD_HOST_PORT: String(dashboardPort),
  API_KEYS: API_KEY,
  DASHBOARD_PASSWORD,
  SANDBOX_VOLUME: VOLUME,
  SANDBOX_ON_SHUTDOWN: 'remove',
  WORKER_CONCURRENCY: '2',
  LOG_LEVEL: 'info',
});
const compose = (...args: string[]) =>
  must('docker-compose', ['-p', PROJECT, '-f', `${ROOT}docker-compose.yml`, ...args], {
    env: composeEnv(),
    timeoutMs: 600_000,
  });

const projectContainers = () =>
  docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${PROJECT}`] } });
const sandboxes = () =>
  docker.listContainers({ all: true, filters: { label: ['research.sandbox=true'], volume: [VOLUME] } });

// Every request has a deadline: one probe sent while a published port was not served yet once
// never settled (no socket, no timer left), and the wait around it could not time out.
const REQUEST_MS = 15_000;

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${API_KEY}`);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  return fetch(`http://127.0.0.1:${apiPort}${path}`, { ...init, headers, signal: AbortSignal.timeout(REQUEST_MS) });
}

/** `p`, or a rejection after `ms`: a probe that never settles must not stall the wait around it. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await within(probe(), REQUEST_MS + 5_000);
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  const logs = await sh('docker-compose', ['-p', PROJECT, '-f', `${ROOT}docker-compose.yml`, 'logs', '--tail=30'], {
    env: composeEnv(),
  });
  throw new Error(`${what} did not happen (last error: ${String(last)})\n${logs.stdout}`);
}

async function dashboardWorkers(): Promise<{ id: string; containerName?: string }[]> {
  const res = await fetch(`http://127.0.0.1:${dashboardPort}/workers.json`, {
    headers: { authorization: `Basic ${Buffer.from(`admin:${DASHBOARD_PASSWORD}`).toString('base64')}` },
    signal: AbortSignal.timeout(REQUEST_MS),
  });
  if (!res.ok) throw new Error(`/workers.json answered ${res.status}`);
  return ((await res.json()) as { workers: { id: string; containerName?: string }[] }).workers;
}

beforeAll(async () => {
  await requireServices();
  const missing: string[] = [];
  for (const image of ['node:20-bookworm-slim', 'redis:7-bookworm', 'research-sandbox:latest'])
    if ((await sh('docker', ['image', 'inspect', image])).code !== 0) missing.push(image);
  if (missing.length > 0)
    throw new Error(
      `missing images ${missing.join(', ')}: run npm run deploy:base-images and npm run sandbox:image (no registry needed)`,
    );
  if ((await sh('docker-compose', ['version'])).code !== 0)
    throw new Error('docker-compose is missing (apt-get install docker-compose)');
  [apiPort, dashboardPort] = [await freePort(), await freePort()];
  const t0 = performance.now();
  await must('bash', [`${ROOT}deploy/build-app-image.sh`, '--offline', '--force', '--tag', IMAGE], {
    timeoutMs: 1_500_000,
  });
  timings.buildS = secondsSince(t0);
}, 1_600_000);

afterAll(async () => {
  if (!wentDown)
    await sh('docker-compose', ['-p', PROJECT, '-f', `${ROOT}docker-compose.yml`, 'down', '-v', '--timeout', '5'], {
      env: composeEnv(),
    });
  for (const c of [...(await projectContainers()), ...(await sandboxes())])
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
  await docker
    .getVolume(VOLUME)
    .remove()
    .catch(() => undefined);
  await sh('docker', ['rmi', '-f', IMAGE]);
  console.log(
    `deploy compose: ${Object.entries(timings)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
}, 300_000);

describe(`docker-compose up --scale worker=${WORKERS}`, () => {
  it(`runs ${TASKS} tasks on ${WORKERS} workers, each with its own sandbox container, and down leaves nothing`, async () => {
    let t0 = performance.now();
    await compose('up', '-d', '--no-build', '--scale', `worker=${WORKERS}`);
    timings.upS = secondsSince(t0);

    const workers = await until('three workers on the dashboard', async () => {
      const list = await dashboardWorkers();
      return list.length === WORKERS ? list : undefined;
    });
    timings.readyS = secondsSince(t0);
    const ids = workers.map((w) => w.id).sort();
    expect(new Set(ids).size).toBe(WORKERS);

    // Each compose replica runs node as PID 1 under its own hostname (its container id); its id
    // is <hostname>-1-<random>, and its sandbox is a container of its own, labelled with that id.
    const replicas = (await projectContainers()).filter((c) => c.Labels['com.docker.compose.service'] === 'worker');
    expect(replicas).toHaveLength(WORKERS);
    const hostnames = await Promise.all(
      replicas.map(async (c) => (await docker.getContainer(c.Id).inspect()).Config.Hostname),
    );
    for (const id of ids)
      expect(
        hostnames.some((h) => id.startsWith(`${h}-1-`)),
        id,
      ).toBe(true);
    const boxes = await sandboxes();
    expect(boxes).toHaveLength(WORKERS);
    expect(boxes.map((b) => b.Labels['research.worker']).sort()).toEqual(ids);
    expect(new Set(boxes.map((b) => b.Id)).size).toBe(WORKERS);

    t0 = performance.now();
    const submitted: { id: string; kind: 'plan' | 'blocks'; n: number }[] = [];
    for (let n = 0; n < TASKS; n++) {
      const kind = n % 5 === 0 ? 'plan' : 'blocks';
      const prompt =
        kind === 'plan'
          ? 'Research current market conditions and investment opportunities'
          : [
              `<daytona-execute>\naction="create-file"\nfilePath="note.txt"\ncontent="task ${n}"\n</daytona-execute>`,
              '<daytona-execute>\naction="execute-command"\ncommand="sleep 0.3 && cat note.txt"\n</daytona-execute>',
              '<daytona-execute action="list-files" path="."/>',
            ].join('\n');
      const res = await api('/v1/jobs', { method: 'POST', body: JSON.stringify({ prompt }) });
      expect(res.status).toBe(202);
      submitted.push({ id: ((await res.json()) as { id: string }).id, kind, n });
    }
    const views: TaskView[] = [];
    for (const task of submitted)
      views.push(
        await until(`task ${task.id} final`, async () => {
          const v = (await (await api(`/v1/jobs/${task.id}`)).json()) as TaskView;
          return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : undefined;
        }),
      );
    timings.tasksS = secondsSince(t0);
    expect(views.map((v) => v.status)).toEqual(Array(TASKS).fill('completed'));
    const ran = new Set(views.map((v) => v.workerId));
    expect([...ran].sort()).toEqual(ids);

    for (const task of submitted) {
      if (task.kind === 'blocks') {
        expect(await (await api(`/v1/jobs/${task.id}/files/note.txt`)).text()).toBe(`task ${task.n}`);
      } else {
        const results = (await (await api(`/v1/jobs/${task.id}/files/results.json`)).json()) as {
          best: { ticker: string };
        };
        expect(await (await api(`/v1/jobs/${task.id}/files/report.md`)).text()).toContain(
          `Best performer: **${results.best.ticker}**`,
        );
      }
    }

    t0 = performance.now();
    await compose('down', '-v');
    wentDown = true;
    timings.downS = secondsSince(t0);
    expect(await projectContainers()).toEqual([]);
    expect(await sandboxes()).toEqual([]);
    const networks = await docker.listNetworks({ filters: { label: [`com.docker.compose.project=${PROJECT}`] } });
    expect(networks).toEqual([]);
    // The sandbox volume was made through the socket, not by compose, so `down -v` leaves it
    // (removing such volumes is the workers' own garbage collection, not compose's); the test removes it.
    expect((await docker.listVolumes({ filters: { name: [VOLUME] } })).Volumes?.map((v) => v.Name)).toEqual([VOLUME]);
  }, 900_000);
});
