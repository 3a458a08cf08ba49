import type Dockerode from 'dockerode';
import type { Duplex } from 'node:stream';
import { DockerDemuxer } from './demux.js';
import { toSandboxError } from './docker-errors.js';
import { SandboxTimeoutError } from './errors.js';

export interface ExecOnceOptions {
  user?: string;
  /** Written to the process's stdin, which is then closed. */
  stdin?: Buffer | string;
  workingDir?: string;
  env?: string[];
  /** Bytes kept per stream; the rest is counted but dropped. Default: unlimited. */
  maxOutputBytes?: number;
  /** Host-side bound on the whole exec. Default: none. */
  timeoutMs?: number;
}

export interface ExecOnceResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

class Capped {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(b: Buffer): void {
    const room = this.cap - this.size;
    if (b.length > room) this.truncated = true;
    if (room <= 0) return;
    const kept = b.length > room ? b.subarray(0, room) : b;
    this.chunks.push(kept);
    this.size += kept.length;
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * One per-call `docker exec` (create, attach, wait for the end of the stream, inspect the exit
 * code). ~45 ms each; used for setup, for the fallback when the runner cannot start, and as the
 * benchmark's baseline.
 */
export async function execOnce(
  container: Dockerode.Container,
  cmd: string[],
  options: ExecOnceOptions = {},
): Promise<ExecOnceResult> {
  const withStdin = options.stdin !== undefined;
  let exec: Dockerode.Exec;
  try {
    exec = await container.exec({
      Cmd: cmd,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: withStdin,
      Tty: false,
      ...(options.user ? { User: options.user } : {}),
      ...(options.workingDir ? { WorkingDir: options.workingDir } : {}),
      ...(options.env ? { Env: options.env } : {}),
    });
  } catch (err) {
    throw toSandboxError(err, 'exec create');
  }
  let stream: Duplex;
  try {
    stream = (await exec.start({ hijack: true, stdin: withStdin })) as Duplex;
  } catch (err) {
    throw toSandboxError(err, 'exec start');
  }
  const cap = options.maxOutputBytes ?? Number.MAX_SAFE_INTEGER;
  const out = new Capped(cap);
  const err = new Capped(cap);
  const demux = new DockerDemuxer((s, payload) => (s === 1 ? out : err).push(payload));
  await new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (e?: Error) => {
      if (timer) clearTimeout(timer);
      if (e) reject(e);
      else resolve();
    };
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        stream.destroy();
        done(new SandboxTimeoutError(`exec ${cmd[0] ?? ''} did not finish within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
    }
    stream.on('data', (chunk: Buffer) => demux.push(chunk));
    stream.on('end', () => done());
    stream.on('close', () => done());
    stream.on('error', (e) => done(toSandboxError(e, 'exec stream')));
    if (withStdin) stream.end(options.stdin);
  });
  let info: Dockerode.ExecInspectInfo;
  try {
    info = await exec.inspect();
    // The stream can end a moment before the engine records the exit code.
    for (let i = 0; info.Running && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 10));
      info = await exec.inspect();
    }
  } catch (e) {
    throw toSandboxError(e, 'exec inspect');
  }
  return {
    exitCode: info.ExitCode ?? -1,
    stdout: out.buffer(),
    stderr: err.buffer(),
    stdoutTruncated: out.truncated,
    stderrTruncated: err.truncated,
  };
}
