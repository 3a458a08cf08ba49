import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { GC_HOOK } from './paths.js';
import { sleep } from './stats.js';

/** Output kept per process, for the error message when it dies. */
const TAIL_BYTES = 16 * 1024;

/** A Node process the bench started: the system's own `dist/main.js`, as in production. */
export class Spawned {
  private tail = '';
  readonly child: ChildProcess;

  constructor(
    readonly label: string,
    script: string,
    env: Record<string, string>,
  ) {
    // BENCH_CPU_PROF_DIR=<dir> writes a V8 CPU profile of every spawned process there (on exit).
    const profile = process.env.BENCH_CPU_PROF_DIR
      ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF_DIR, '--cpu-prof-name', `${label}.cpuprofile`]
      : [];
    this.child = spawn(process.execPath, [...profile, '--expose-gc', '--import', GC_HOOK, script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString()).slice(-TAIL_BYTES);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.label} has no pid: ${this.tail}`);
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Throws with the process's last output if it has died. */
  assertAlive(): void {
    if (this.exited)
      throw new Error(`${this.label} exited (${this.child.exitCode ?? this.child.signalCode}):\n${this.tail}`);
  }

  /** Resident set size from /proc (what the kernel charges the process), in MiB. */
  async rssMb(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    if (kb === undefined) throw new Error(`no VmRSS for ${this.label}`);
    return Number(kb) / 1024;
  }

  /** Asks the process (through the preloaded gc hook) to collect garbage. */
  gc(): void {
    this.child.kill('SIGUSR2');
  }

  /** SIGTERM (the graceful path), SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await done;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Polls `check` every `everyMs` until it returns true, failing after `timeoutMs` with `what`. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
