import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from '@research/testing';

/**
 * A Redis Cluster of three masters (no replicas) on loopback, as child processes, in a
 * temporary directory of its own. Never touches the shared Redis.
 */
export class RedisCluster {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'redis-cluster-'));
  readonly ports: number[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly outputs: string[] = [];

  /** Fails at once, saying what to install, when redis-server or redis-cli is missing or older than 7. */
  static requireBinaries(): void {
    for (const bin of ['redis-server', 'redis-cli']) {
      const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
      if (r.error)
        throw new Error(
          `${bin} not found in PATH — install Redis 7 or later (e.g. apt-get install redis-server) to run the Cluster test`,
        );
      const major = Number(/v=(\d+)\.|redis-cli (\d+)\./.exec(r.stdout)?.slice(1).find(Boolean) ?? 0);
      if (major < 7)
        throw new Error(
          `${bin} is older than 7 (${r.stdout.trim()}); the Cluster test needs --cluster-port, Redis 7 or later`,
        );
    }
  }

  urlOf(port: number): string {
    return `redis://127.0.0.1:${port}`;
  }

  async start(masters = 3): Promise<void> {
    // Each node's cluster bus gets a port of its own (the default, port + 10000, may be taken).
    const free = new Set<number>();
    while (free.size < masters * 2) free.add(await freePort());
    const ports = [...free];
    for (let i = 0; i < masters; i++) {
      const [port, busPort] = [ports[i]!, ports[masters + i]!];
      this.ports.push(port);
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--cluster-port',
          String(busPort),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          path.join(this.dir, `nodes-${port}.conf`),
          '--dir',
          this.dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const at = this.outputs.push('') - 1;
      const keep = (d: Buffer) => (this.outputs[at] += d.toString());
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      this.children.push(child);
    }
    await Promise.all(this.children.map((child, i) => this.untilOutput(child, i, /Ready to accept connections/)));

    const create = await run('redis-cli', [
      '--cluster',
      'create',
      ...this.ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    if (create.code !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.out}`);
    const until = Date.now() + 30_000;
    for (;;) {
      const infos = await Promise.all(this.ports.map((p) => run('redis-cli', ['-p', String(p), 'cluster', 'info'])));
      if (
        infos.every(
          (r) => /cluster_state:ok/.test(r.out) && new RegExp(`cluster_known_nodes:${masters}\\b`).test(r.out),
        )
      )
        return;
      if (Date.now() > until)
        throw new Error(`cluster did not reach cluster_state:ok:\n${infos.map((r) => r.out).join('\n')}`);
      await sleep(100);
    }
  }

  /** The URL of the master owning `key`'s hash slot. */
  async ownerOf(key: string): Promise<string> {
    const port = String(this.ports[0]);
    const slot = Number((await run('redis-cli', ['-p', port, 'cluster', 'keyslot', key])).out.trim());
    // CLUSTER NODES: `<id> <ip>:<port>@<bus port> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges…>`
    for (const line of (await run('redis-cli', ['-p', port, 'cluster', 'nodes'])).out.split('\n')) {
      const fields = line.trim().split(/\s+/);
      const nodePort = /:(\d+)@/.exec(fields[1] ?? '')?.[1];
      for (const range of fields.slice(8)) {
        const [first, last = first] = range.split('-').map(Number);
        if (nodePort && first !== undefined && last !== undefined && slot >= first && slot <= last)
          return this.urlOf(Number(nodePort));
      }
    }
    throw new Error(`no master owns slot ${slot} of ${key}`);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async untilOutput(child: ChildProcess, i: number, pattern: RegExp): Promise<void> {
    const until = Date.now() + 15_000;
    while (!pattern.test(this.outputs[i] ?? '')) {
      if (child.exitCode !== null) throw new Error(`redis-server on ${this.ports[i]} exited:\n${this.outputs[i]}`);
      if (Date.now() > until) throw new Error(`redis-server on ${this.ports[i]} did not start:\n${this.outputs[i]}`);
      await sleep(50);
    }
  }
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}
