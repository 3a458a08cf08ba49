#!/usr/bin/env node
// `npm run up`: one command from a fresh clone to a running system.
// Installs and builds what is missing, finds or starts Redis, builds the sandbox image if it is
// missing, starts the API, the dashboard and N workers, runs the example research task with a
// live progress bar, and stays up until Ctrl-C — which stops everything it started.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STATE = path.join(ROOT, '.research');
const LOGS = path.join(STATE, 'logs');
const DEMO_PROMPT = 'Research current market conditions and investment opportunities';
/** Redis's maxmemory when up starts Redis (README, "Quick start"); it refuses writes past it (noeviction). */
const REDIS_MAXMEMORY = process.env.REDIS_MAXMEMORY || '1gb';
/** How up runs Redis, whether redis-server from PATH or in a container: durable (AOF) and bounded. */
const REDIS_SETTINGS = ['--appendonly', 'yes', '--maxmemory', REDIS_MAXMEMORY, '--maxmemory-policy', 'noeviction'];

const args = parseArgs(process.argv.slice(2));
const children = [];
let stopping = false;

function parseArgs(argv) {
  const out = { demo: true, workers: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-demo') out.demo = false;
    else if (a === '--workers' || a.startsWith('--workers=')) {
      const v = a.includes('=') ? a.split('=')[1] : argv[++i];
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 32)
        fail(`--workers takes a whole number from 1 to 32 (got ${JSON.stringify(v)})`);
      out.workers = n;
    } else if (a === '--help' || a === '-h') {
      console.log('usage: npm run up -- [--workers N] [--no-demo]');
      process.exit(0);
    } else fail(`unknown option ${a} (try --help)`);
  }
  return out;
}

function fail(message, hints = []) {
  console.error(`\n✖ ${message}`);
  for (const h of hints) console.error(`  • ${h}`);
  void shutdown(1);
  // shutdown exits
  throw new Error(message);
}

function step(message) {
  console.log(`▸ ${message}`);
}

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, {
    cwd: ROOT,
    stdio: opts.quiet ? 'pipe' : 'inherit',
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
  });
  return r;
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function redisPing(url, timeoutMs = 1500) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.createConnection({ host: u.hostname, port: Number(u.port || 6379) });
    const timer = setTimeout(() => done(false), timeoutMs);
    let buf = '';
    function done(ok) {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    }
    socket.on('connect', () => {
      if (u.password)
        socket.write(
          `AUTH ${u.username ? `${decodeURIComponent(u.username)} ` : ''}${decodeURIComponent(u.password)}\r\n`,
        );
      socket.write('PING\r\n');
    });
    socket.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('+PONG')) done(true);
      else if (buf.includes('-')) done(false);
    });
    socket.on('error', () => done(false));
  });
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function startChild(name, cmd, argv, env) {
  const log = openSync(path.join(LOGS, `${name}.log`), 'a');
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
    detached: true,
  });
  child.name = name;
  children.push(child);
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`\n✖ ${name} exited (${signal ?? `code ${code}`}); see .research/logs/${name}.log`);
  });
  return child;
}

async function waitFor(check, what, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  fail(`${what} did not come up within ${Math.round(timeoutMs / 1000)} s`, [
    `see the logs in ${path.relative(process.cwd(), LOGS) || LOGS}`,
  ]);
}

async function httpOk(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.status < 500;
  } catch {
    return false;
  }
}

async function shutdown(code = 0) {
  if (stopping) return;
  stopping = true;
  if (children.length > 0)
    console.log(`\n▸ stopping: workers, dashboard, API${children.some((c) => c.name === 'redis') ? ', redis' : ''}`);
  // Workers first (they finish or hand back their tasks), Redis last.
  const order = [...children].sort((a, b) => rank(a) - rank(b));
  for (const group of [
    order.filter((c) => rank(c) === 0),
    order.filter((c) => rank(c) === 1),
    order.filter((c) => rank(c) === 2),
  ]) {
    await Promise.all(group.map((c) => stopChild(c)));
  }
  if (redisContainer) spawnSync('docker', ['rm', '-f', redisContainer], { stdio: 'ignore' });
  process.exit(code);
}

function rank(c) {
  return c.name.startsWith('worker') ? 0 : c.name === 'redis' ? 2 : 1;
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, 45_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

let redisContainer;

async function main() {
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  const [major] = process.versions.node.split('.').map(Number);
  if (major < 20) fail(`Node 20 or newer is needed (this is ${process.version})`);
  mkdirSync(LOGS, { recursive: true });

  if (!existsSync(path.join(ROOT, 'node_modules', '.package-lock.json'))) {
    step('installing dependencies (npm ci)');
    if (run('npm', ['ci', '--no-audit', '--no-fund']).status !== 0) fail('npm ci failed');
  }
  step('building');
  if (run('npx', ['turbo', 'run', 'build', '--filter=./apps/*', '--output-logs=errors-only']).status !== 0)
    fail('the build failed');

  if (run('docker', ['info'], { quiet: true }).status !== 0) {
    fail('the Docker engine is not reachable', [
      'start it (dockerd, or Docker Desktop) and make sure /var/run/docker.sock is usable by this user',
    ]);
  }

  // Redis: REDIS_URL, else one already on 127.0.0.1:6379, else redis-server from PATH, else a container.
  let redisUrl = process.env.REDIS_URL;
  if (redisUrl) {
    if (!(await redisPing(redisUrl)))
      fail(`REDIS_URL=${shownUrl(redisUrl)} does not answer PING`, [
        'start that Redis, or unset REDIS_URL to let `npm run up` start one',
      ]);
    step(`using Redis at ${shownUrl(redisUrl)}`);
  } else if (await redisPing('redis://127.0.0.1:6379')) {
    redisUrl = 'redis://127.0.0.1:6379';
    step(`using the Redis already running at ${redisUrl}`);
  } else if (has('redis-server')) {
    const port = (await portFree(6379)) ? 6379 : 6380;
    redisUrl = `redis://127.0.0.1:${port}`;
    const dir = path.join(STATE, 'redis');
    mkdirSync(dir, { recursive: true });
    step(`starting redis-server on ${redisUrl}`);
    startChild('redis', 'redis-server', [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      ...REDIS_SETTINGS,
      '--save',
      '',
    ]);
    await waitFor(() => redisPing(redisUrl), 'redis-server', 10_000);
  } else {
    const images = spawnSync('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', 'redis'], {
      encoding: 'utf8',
    })
      .stdout.split('\n')
      .filter(Boolean);
    const image = images[0] ?? 'redis:7';
    if (images.length === 0 && run('docker', ['pull', image], { quiet: true }).status !== 0) {
      fail(
        'no Redis: REDIS_URL is unset, nothing answers on 127.0.0.1:6379, redis-server is not installed and no Redis image can be pulled',
        [
          'set REDIS_URL=redis://host:6379 to use an existing Redis',
          'or install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)',
          'or make a Redis image available to Docker (docker pull redis:7)',
        ],
      );
    }
    const port = (await portFree(6379)) ? 6379 : 6380;
    redisUrl = `redis://127.0.0.1:${port}`;
    step(`starting Redis in a container (${image}) on ${redisUrl}`);
    const r = spawnSync(
      'docker',
      ['run', '-d', '--rm', '-p', `127.0.0.1:${port}:6379`, image, 'redis-server', ...REDIS_SETTINGS],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) fail(`could not start a Redis container: ${r.stderr.trim()}`);
    redisContainer = r.stdout.trim();
    await waitFor(() => redisPing(redisUrl), 'the Redis container', 20_000);
  }

  const image = process.env.SANDBOX_IMAGE ?? 'research-sandbox:latest';
  if (run('docker', ['image', 'inspect', image], { quiet: true }).status !== 0) {
    if (image !== 'research-sandbox:latest')
      fail(`the sandbox image ${image} is not present`, [
        `docker pull ${image}`,
        'or unset SANDBOX_IMAGE to build the default one',
      ]);
    step('building the sandbox image research-sandbox:latest (first run only; a few minutes)');
    const built = has('debootstrap')
      ? run('bash', ['sandbox-image/build.sh'])
      : run('docker', ['build', '-t', image, 'sandbox-image']);
    if (built.status !== 0)
      fail('the sandbox image could not be built', [
        'install debootstrap (apt-get install debootstrap) to build it without a registry',
        'or build sandbox-image/Dockerfile where a registry is reachable',
      ]);
  }

  const apiPort = Number(process.env.PORT ?? 3000);
  const dashboardPort = Number(process.env.DASHBOARD_PORT ?? 3001);
  for (const [name, port] of [
    ['PORT', apiPort],
    ['DASHBOARD_PORT', dashboardPort],
  ]) {
    if (!(await portFree(port)))
      fail(`port ${port} is in use`, [`stop what listens there, or set ${name} to another port`]);
  }
  // An entry is `tenant:key`; the client sends only the key.
  const apiKey =
    process.env.API_KEYS?.split(',')[0]
      ?.trim()
      .replace(/^[^:]*:/, '') || `rk_${randomBytes(18).toString('base64url')}`;
  const dashboardUser = process.env.DASHBOARD_USER || 'admin';
  const dashboardPassword = process.env.DASHBOARD_PASSWORD || randomBytes(12).toString('base64url');
  const common = { REDIS_URL: redisUrl, LOG_PRETTY: 'false' };

  step(`starting the API, the dashboard and ${args.workers} worker${args.workers > 1 ? 's' : ''}`);
  startChild('api', process.execPath, ['apps/api/dist/main.js'], {
    ...common,
    API_KEYS: process.env.API_KEYS || apiKey,
    PORT: String(apiPort),
  });
  startChild('dashboard', process.execPath, ['apps/dashboard/dist/main.js'], {
    ...common,
    DASHBOARD_PORT: String(dashboardPort),
    DASHBOARD_USER: dashboardUser,
    DASHBOARD_PASSWORD: dashboardPassword,
  });
  for (let i = 1; i <= args.workers; i++) {
    startChild(`worker-${i}`, process.execPath, ['apps/worker/dist/main.js'], {
      ...common,
      WORKER_ID: process.env.WORKER_ID ? `${process.env.WORKER_ID}-${i}` : `${os.hostname()}-up-${i}`,
    });
  }
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const dashboardUrl = `http://127.0.0.1:${dashboardPort}`;
  // The API's own client (built above with the apps): ready() is GET /readyz, Redis reachable.
  const { ResearchClient } = await import(new URL('../packages/client/dist/index.js', import.meta.url).href);
  const api = new ResearchClient({ baseUrl: apiUrl, apiKey, requestTimeoutMs: 1_000 });
  const ready = () =>
    api
      .ready()
      .then(() => true)
      .catch(() => false);
  await waitFor(ready, 'the API', 30_000);
  await waitFor(() => httpOk(`${dashboardUrl}/`), 'the dashboard', 30_000);

  console.log(`
  API        ${apiUrl}            key: ${apiKey}
  Dashboard  ${dashboardUrl}/     login: ${dashboardUser} / ${dashboardPassword}
  Logs       .research/logs/
  CLI        RESEARCH_API_URL=${apiUrl} RESEARCH_API_KEY=${apiKey} npx research submit "…" --follow
  Web        ${webAccessLine()}
`);

  if (args.demo) {
    step(`submitting the example task: "${DEMO_PROMPT}"`);
    const cli = spawn(process.execPath, ['apps/cli/dist/main.js', 'submit', DEMO_PROMPT, '--follow'], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, RESEARCH_API_URL: apiUrl, RESEARCH_API_KEY: apiKey },
    });
    const code = await new Promise((r) => cli.on('exit', (c) => r(c ?? 1)));
    if (code !== 0 && !stopping) console.error('✖ the example task did not complete; see .research/logs/');
  }
  if (!stopping) console.log('\nRunning. Press Ctrl-C to stop.');
}

/** Offline unless a search provider is configured; either way, how to change it. */
function webAccessLine() {
  const provider = process.env.WEB_SEARCH_PROVIDER || 'none';
  if (provider === 'none')
    return `off (offline). To let tasks search and fetch: WEB_SEARCH_PROVIDER=searxng WEB_SEARCH_URL=http://your-searxng npm run up
             (or tavily / brave with WEB_SEARCH_API_KEY); fetches go through the egress policy (EGRESS_ALLOW_HOSTS / EGRESS_DENY_HOSTS).
             See README "Web access".`;
  const where = process.env.WEB_SEARCH_URL ? ` at ${process.env.WEB_SEARCH_URL}` : '';
  const allow = process.env.EGRESS_ALLOW_HOSTS ? `; allowed beyond the default: ${process.env.EGRESS_ALLOW_HOSTS}` : '';
  return `on: ${provider}${where}; every request through the egress policy${allow}. See README "Web access".`;
}

main().catch((err) => {
  if (!stopping) {
    console.error(err);
    void shutdown(1);
  }
});

/** The URL as printed: its credentials stripped, as the services' logs do (packages/config redactUrl). */
function shownUrl(url) {
  return url.replace(/\b([a-z][a-z0-9+.-]{0,30}:\/\/)([^\s/?#@"'\\]+)@/gi, '$1[redacted]@');
}
