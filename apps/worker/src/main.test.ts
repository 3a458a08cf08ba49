/**
 * WORKER_ID as the worker's main.js holds it, against the real Redis and Docker: a held id is
 * refused, and the default id differs between processes that share a hostname and a PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WorkerKeys, WorkerRegistry, type WorkerInfo } from '@research/queue';
import { sleep } from '@research/testing';
import { useHarness } from '../test/harness.js';

const WORKER_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const h = useHarness();

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

async function registered(count: number, runs: Run[] = [], timeoutMs = 90_000): Promise<WorkerInfo[]> {
  const registry = new WorkerRegistry(h.redis, h.prefix);
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const infos = await registry.alive(60_000);
    if (infos.length >= count) return infos;
    await sleep(100);
  }
  throw new Error(`${count} workers did not register in ${timeoutMs} ms; their output:\n${outputs(runs)}`);
}

function outputs(runs: Run[]): string {
  return runs.map((r, i) => `--- process ${i} (pid ${r.child.pid}):\n${r.output()}`).join('\n');
}

/** The pid (host's view) of the process `unshare --fork` started, or undefined once it is gone. */
function forkedChild(unsharePid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim().split(' ')[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/** Exit code of `r` within `ms`, or undefined if it is still running then. */
function exitWithin(r: Run, ms: number): Promise<number | null | undefined> {
  return Promise.race([r.exited, sleep(ms).then(() => undefined)]);
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

  it('a worker that is PID 1 stops on a SIGTERM that comes during its startup: exit 0, its id and registration freed', async () => {
    const workerId = `wt-early-${h.prefix.slice(7, 15)}`;
    const claim = new WorkerKeys(h.prefix).claim(workerId);
    const r = run('unshare', ['--pid', '--fork', '--kill-child', process.execPath, WORKER_MAIN], {
      ...process.env,
      ...h.workerEnv(workerId),
    });
    // The id is claimed first, the sandbox container comes next: the signal lands in between.
    const until = Date.now() + 60_000;
    while (!(await h.redis.exists(claim)) && Date.now() < until) await sleep(5);
    const registeredAtSignal = (await new WorkerRegistry(h.redis, h.prefix).lastBeat(workerId)) !== undefined;
    const child = forkedChild(r.child.pid!);
    expect(child, outputs([r])).toBeDefined();
    process.kill(child!, 'SIGTERM');
    const code = await exitWithin(r, 60_000);
    if (code === undefined) r.child.kill('SIGKILL');
    expect(code, outputs([r])).toBe(0);
    expect(registeredAtSignal, 'the signal came before the worker registered').toBe(false);
    expect(await h.redis.exists(claim)).toBe(0);
    expect(await new WorkerRegistry(h.redis, h.prefix).lastBeat(workerId)).toBeUndefined();
  });

  it('the default id differs between two processes of one host that both run as PID 1', {
    timeout: 200_000,
  }, async () => {
    const { WORKER_ID: _none, ...env } = { ...process.env, ...h.workerEnv('unused') };
    // Each in its own PID namespace, so each is PID 1, as node is in every container of a
    // `docker-compose --scale` with host networking: hostname and pid alone gave both one id.
    const runs = [0, 1].map(() =>
      run('unshare', ['--pid', '--fork', '--kill-child', process.execPath, WORKER_MAIN], env),
    );
    try {
      const infos = await registered(2, runs);
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
        const child = forkedChild(r.child.pid!);
        if (child) process.kill(child, 'SIGTERM');
      }
      const codes = await Promise.all(runs.map((r) => exitWithin(r, 60_000)));
      // One that did not stop: unshare's SIGKILL takes its child along (--kill-child), so
      // nothing is left behind, and the test fails with what both printed.
      for (const [i, code] of codes.entries()) if (code === undefined) runs[i]!.child.kill('SIGKILL');
      expect(codes, outputs(runs)).toEqual([0, 0]);
    }
  });
});
