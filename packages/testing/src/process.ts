import { spawn, type ChildProcess } from 'node:child_process';

/** Output kept per process (the end of it), for the error message when it dies or hangs. */
const TAIL_CHARS = 100_000;

/** A Node process a test or the bench started: one of the system's own `dist/main.js`, as in production. */
export class Spawned {
  readonly child: ChildProcess;
  private tail = '';

  /**
   * @param name what error messages call it; a worker's is its id.
   * @param nodeArgs flags for `node` before the script (default none).
   */
  constructor(
    readonly name: string,
    script: string,
    env: NodeJS.ProcessEnv,
    nodeArgs: string[] = [],
  ) {
    this.child = spawn(process.execPath, [...nodeArgs, script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => {
      this.tail += d.toString();
      if (this.tail.length > 2 * TAIL_CHARS) this.tail = this.tail.slice(-TAIL_CHARS);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
  }

  /** What it printed (stdout and stderr, interleaved; the last 100,000 characters or more). */
  output(): string {
    return this.tail;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid: ${this.tail}`);
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Throws with the process's output if it has died. */
  assertAlive(): void {
    if (this.exited)
      throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}):\n${this.tail}`);
  }

  /** Sends `signal` and resolves once the process has exited; with `graceMs`, SIGKILL follows after that long. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs?: number): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill(signal);
    const timer = graceMs === undefined ? undefined : setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
