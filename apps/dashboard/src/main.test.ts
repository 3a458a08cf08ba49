import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '@research/queue';
import { REDIS_URL, deletePrefix, eventually, freePort, testPrefix } from '@research/testing';

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mainJs = path.join(appDir, 'dist', 'main.js');

const redisUrl = REDIS_URL;
const prefix = testPrefix('dash-main');

/** The environment of this test run without any dashboard setting. */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DASHBOARD_')) env[k] = v;
  return { ...env, REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, LOG_PRETTY: 'false', ...extra };
}

async function run(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [mainJs], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

/** `node dist/main.js` under `env`, running: what it wrote so far (stdout and stderr, in order), and its exit. */
function start(env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [mainJs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output, exited: once(child, 'exit') as Promise<[number | null]> };
}

beforeAll(() => {
  // Test what `npm start` runs: compile first (incremental, so cheap when dist is current).
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(appDir, 'tsconfig.json')], { stdio: 'inherit' });
});

afterAll(async () => {
  const redis = createRedis(redisUrl, 'worker');
  try {
    await deletePrefix(redis, prefix);
  } finally {
    await redis.quit();
  }
});

describe('dist/main.js', () => {
  it('refuses to start without DASHBOARD_USER and DASHBOARD_PASSWORD, naming them', async () => {
    const { code, stderr } = await run(baseEnv({}));
    expect(code).not.toBe(0);
    expect(stderr).toContain('DASHBOARD_USER');
    expect(stderr).toContain('DASHBOARD_PASSWORD');
    expect(stderr).toContain('DASHBOARD_READONLY_LOOPBACK');
  });

  it('refuses a user without a password', async () => {
    const { code, stderr } = await run(baseEnv({ DASHBOARD_USER: 'ops' }));
    expect(code).not.toBe(0);
    expect(stderr).toContain('DASHBOARD_PASSWORD');
  });

  it('runs read-only on loopback when told to, and stops on SIGTERM', async () => {
    const port = await freePort();
    const { child, output, exited } = start(
      baseEnv({ DASHBOARD_READONLY_LOOPBACK: 'true', DASHBOARD_PORT: String(port) }),
    );
    try {
      const body = await eventually(`the dashboard on port ${port} (output so far: ${output()})`, async () => {
        const res = await fetch(`http://127.0.0.1:${port}/api/queues`).catch(() => undefined);
        return res?.status === 200
          ? ((await res.json()) as { queues: { name: string; readOnlyMode: boolean }[] })
          : undefined;
      });
      expect(body.queues.find((q) => q.name === 'agent')?.readOnlyMode).toBe(true);
      expect(output()).toContain('read-only, loopback only');
      // Bound to loopback only (the address it logs is the one it passed to listen()).
      expect(output()).toContain('"host":"127.0.0.1"');
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await exited;
    expect(code).toBe(0);
  });

  it('reports a taken port as a fatal error naming DASHBOARD_PORT and exits 1, never as listening', async () => {
    const holder = createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const { port } = holder.address() as { port: number };
    try {
      const { output, exited } = start(baseEnv({ DASHBOARD_READONLY_LOOPBACK: 'true', DASHBOARD_PORT: String(port) }));
      const [code] = await exited;
      expect(code).toBe(1);
      expect(output()).toContain(`port ${port} (127.0.0.1:${port}) is already in use`);
      expect(output()).toContain('DASHBOARD_PORT');
      expect(output()).not.toContain('dashboard on http');
    } finally {
      holder.close();
    }
  });
});
