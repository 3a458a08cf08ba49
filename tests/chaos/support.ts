import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from '@research/testing';

/** One line per chaos test, so the numbers can be quoted. */
export function summary(test: string, counts: Record<string, number | string>): void {
  console.log(
    `chaos ${test}: ${Object.entries(counts)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
}

/**
 * A redis-server of our own (AOF on, RDB off) on a free loopback port, in a temporary
 * directory, so a test may stop and restart it without touching the shared Redis.
 */
export class OwnRedis {
  port = 0;
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'chaos-redis-'));

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        '--save',
        '',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const until = Date.now() + 15_000;
    while (!/Ready to accept connections/.test(out)) {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
      if (Date.now() > until) throw new Error(`redis-server did not start: ${out}`);
      await sleep(50);
    }
  }

  /** Stops it the way an operator would (SIGTERM: the AOF is flushed). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  async close(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
