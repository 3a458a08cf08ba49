import { readdirSync, readFileSync } from 'node:fs';
import { createLogger } from '@research/config';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { SandboxProtocolError } from './errors.js';
import { RUNNER_PROTOCOL } from './protocol.js';
import { RunnerTransport } from './runner-transport.js';
import { containerOf, rootExec, useSandbox } from './test-helpers.js';

describe('runner protocol version', () => {
  const env = useSandbox();

  it('is the same number in the host and in the runner it ships', () => {
    const proto = readFileSync(new URL('../runner/sandbox_runner/proto.py', import.meta.url), 'utf8');
    expect(Number(/^PROTOCOL = (\d+)$/m.exec(proto)?.[1])).toBe(RUNNER_PROTOCOL);
  });

  it('is checked: a runner that speaks another version is refused with both versions named', async () => {
    const container = await containerOf(env.workerId);
    const other = RUNNER_PROTOCOL + 1;
    const fake = `import json, sys\nprint(json.dumps({"id": 0, "ready": True, "protocol": ${other}}), flush=True)\nsys.stdin.read()\n`;
    const tar = pack();
    tar.entry({ name: 'fake-runner.py', mode: 0o644 }, fake);
    tar.finalize();
    const chunks: Buffer[] = [];
    for await (const c of tar) chunks.push(c as Buffer);
    await container.putArchive(Buffer.concat(chunks), { path: '/tmp' });
    const started = RunnerTransport.start({
      container,
      python: '/usr/bin/python3',
      scriptPath: '/tmp/fake-runner.py',
      config: {},
      startTimeoutMs: 20_000,
      logger: createLogger({ level: 'silent', pretty: false }),
    });
    const err = await started.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxProtocolError);
    expect((err as Error).message).toContain(
      `runner speaks protocol ${other} but this host speaks protocol ${RUNNER_PROTOCOL}`,
    );
    expect((err as SandboxProtocolError).retryable).toBe(false);
  });

  it('ships modules of python 3.8 grammar, none over 400 lines, using no 3.9+ call unguarded', async () => {
    const dir = new URL('../runner/sandbox_runner/', import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.py'))) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      expect(src.split('\n').length, f).toBeLessThan(400);
      expect(src, f).not.toMatch(/waitstatus_to_exitcode|removeprefix|removesuffix|\bmatch .*:$|functools\.cache\b/m);
    }
    const check = await rootExec(
      env.workerId,
      `python3 -c "import ast, glob; [ast.parse(open(f).read(), f, feature_version=(3, 8)) for f in glob.glob('/opt/research/runner/**/*.py', recursive=True)]; print('ok')" 2>&1`,
    );
    expect(check.trim()).toBe('ok');
  });
});
