import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Runs dist/main.js until it exits or `until` matches its output; stdout and stderr together. */
async function runMain(
  env: NodeJS.ProcessEnv,
  until?: RegExp,
): Promise<{ code: number | null; output: string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = once(child, 'exit').then(([c]) => c as number | null);
  const matched = new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      if (until?.test(output)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
  const code = await Promise.race([exited, matched.then(() => undefined)]);
  return {
    code: code ?? null,
    get output() {
      return output;
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

async function listen(server: Server, host: string, port = 0): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

describe('main.js and its port', () => {
  beforeAll(() => {
    if (!existsSync(main)) {
      execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
      });
    }
  });

  it('reports a taken port as a fatal error naming PORT and exits 1, never as listening', async () => {
    const holder = createServer();
    const port = await listen(holder, '127.0.0.1');
    try {
      const run = await runMain({
        ...process.env,
        API_KEYS: 'main-test-key-0123456789',
        PORT: String(port),
        LOG_PRETTY: 'false',
      });
      expect(run.code).toBe(1);
      expect(run.output).toContain(`port ${port} is already in use`);
      expect(run.output).toContain('PORT');
      expect(run.output).toContain('"level":60');
      expect(run.output).not.toContain('api listening');
    } finally {
      holder.close();
    }
  });

  it('logs listening once the port is bound', async () => {
    const probe = createServer();
    const port = await listen(probe, '127.0.0.1');
    probe.close();
    await once(probe, 'close');
    const run = await runMain(
      { ...process.env, API_KEYS: 'main-test-key-0123456789', PORT: String(port), LOG_PRETTY: 'false' },
      /api listening/,
    );
    try {
      expect(run.code).toBeNull();
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      expect(await run.stop()).toBe(0);
    }
  });
});
