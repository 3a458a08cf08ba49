/**
 * WORKER_ID as the worker's main.js holds it, against the real Redis and Docker: a held id is
 * refused, and the default id differs between processes that share a hostname and a PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerRegistry, type WorkerInfo } from '@research/queue';
import { requireServices, sleep } from '@research/testing';
import { Harness } from '../test/harness.js';

const WORKER_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
let h: Harness;

beforeAll(async () => {
  await requireServices();
  h = new Harness();
});

afterAll(async () => {
  await h?.close();
});

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, output: () => output, exited };
}

async function registered(count: number, timeoutMs = 60_000): Promise<WorkerInfo[]> {
  const registry = new WorkerRegistry(h.redis, h.prefix);
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const infos = await registry.alive(60_000);
    if (infos.length >= count) return infos;
    await sleep(100);
  }
  throw new Error(`${count} workers did not register`);
}

describe('WORKER_ID', () => {
  it('a second worker process with an id a live worker holds exits 1, naming WORKER_ID and the holder', async () => {
    const workerId = `wt-dup-${h.prefix.slice(7, 15)}`;
    const holder = (await h.startWorker(workerId)).child;
    const second = run(process.execPath, [WORKER_MAIN], { ...process.env, ...h.workerEnv(workerId) });
    const code = await second.exited;
    expect(code).toBe(1);
    expect(second.output()).toContain(`WORKER_ID=${workerId} is held by a live worker`);
    expect(second.output()).toContain(`host ${os.hostname()}, pid ${holder.pid}, last beat`);
    // The holder was left alone: still registered, still the only worker with that id.
    const [info] = await registered(1);
    expect(info).toMatchObject({ id: workerId, pid: holder.pid });

    // Stopped cleanly, the holder frees the id at once: the next worker under it starts.
    holder.kill('SIGTERM');
    expect((await once(holder, 'exit'))[0]).toBe(0);
    const next = (await h.startWorker(workerId)).child;
    next.kill('SIGTERM');
    expect((await once(next, 'exit'))[0]).toBe(0);
  });

  it('the default id differs between two processes of one host that both run as PID 1', async () => {
    const { WORKER_ID: _none, ...env } = { ...process.env, ...h.workerEnv('unused') };
    // Each in its own PID namespace, so each is PID 1, as node is in every container of a
    // `docker-compose --scale` with host networking: hostname and pid alone gave both one id.
    const runs = [0, 1].map(() =>
      run('unshare', ['--pid', '--fork', '--kill-child', process.execPath, WORKER_MAIN], env),
    );
    try {
      const infos = await registered(2);
      const ids = infos.map((w) => w.id);
      // Their containers are removed with the system's.
      for (const id of ids) h.workerEnv(id);
      expect(new Set(ids).size).toBe(2);
      for (const w of infos) {
        expect(w.pid).toBe(1);
        expect(w.host).toBe(os.hostname());
        expect(w.id.startsWith(`${os.hostname()}-1-`), w.id).toBe(true);
        expect(w.id).toMatch(/-1-[0-9a-f]{6}$/);
      }
      expect(new Set(infos.map((w) => w.containerName)).size).toBe(2);
    } finally {
      for (const r of runs) {
        // unshare waits for its child and ignores SIGTERM; the worker (PID 1 inside) handles it.
        const child = readFileSync(`/proc/${r.child.pid}/task/${r.child.pid}/children`, 'utf8').trim();
        if (child) process.kill(Number(child.split(' ')[0]), 'SIGTERM');
      }
      const codes = await Promise.all(runs.map((r) => r.exited));
      expect(codes, runs.map((r) => r.output()).join('\n')).toEqual([0, 0]);
    }
  });
});
