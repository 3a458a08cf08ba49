import type Dockerode from 'dockerode';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import type { ActionResult, FileEntry } from '@research/contracts';
import { toSandboxError } from './docker-errors.js';
import { SandboxAbortedError } from './errors.js';
import { execOnce } from './exec.js';
import { HOMES, OVER_QUOTA, QUOTA_MARK, REFUSED, REFUSED_MARK, ROOT_SCRIPTS, TASK_SCRIPTS } from './exec-scripts.js';
import { WORKSPACE_ROOT } from './paths.js';
import type { CallOptions, ExportReply, RunnerReply, RunnerRequest, Transport } from './protocol.js';

export interface ExecTransportOptions {
  container: Dockerode.Container;
  runnerUid: number;
  taskUidFirst: number;
  taskUidCount: number;
  /** 0: no quota. */
  taskDiskBytes: number;
  maxReadBytes: number;
  listMaxEntries: number;
  listMaxDepth: number;
}

type Refusal = Extract<RunnerReply<never>, { ok: false }>;

/** How often the exec fallback measures a running command's task against its disk quota. */
const QUOTA_WATCH_MS = 200;

/**
 * The fallback when the runner cannot start (no python3 in the image): every request is its own
 * `docker exec` of a small POSIX shell script (exec-scripts.ts). Same requests and replies as the
 * runner, ~45 ms each. Each task's actions run as the task's own uid (`User: uid:uid`, set by
 * the engine), allocated by a root exec the first time. Weaker than the runner: the commands'
 * bounding set is the container's (their effective and permitted sets are empty and
 * no-new-privileges holds, so it cannot be used); the disk quota is watched with a root exec
 * every 200 ms while a command runs (the runner watches every 20 ms), and not at all for what a
 * command leaves running after it; a background job that keeps the command's stdout open delays
 * the reply until the timeout.
 */
export class ExecTransport implements Transport {
  readonly kind = 'exec' as const;
  readonly alive = true;
  private readonly uids = new Map<string, number>();

  constructor(private readonly o: ExecTransportOptions) {}

  async call<T>(req: RunnerRequest, options: CallOptions): Promise<RunnerReply<T>> {
    if (options.signal?.aborted)
      throw new SandboxAbortedError('aborted before start', { cause: options.signal.reason });
    const reply = await this.dispatch(req, options);
    return reply as RunnerReply<T>;
  }

  async close(): Promise<void> {}

  private root(script: keyof typeof ROOT_SCRIPTS, args: string[]) {
    return execOnce(this.o.container, ['/bin/sh', '-c', ROOT_SCRIPTS[script], 'sandbox-fallback', ...args], {
      user: '0',
      timeoutMs: 600_000,
    });
  }

  /** The task's uid (its directory made and handed to a new uid when `create`), or a refusal. */
  private async identity(task: string, create: boolean): Promise<number | undefined | Refusal> {
    const known = this.uids.get(task);
    if (known !== undefined) return known;
    const { taskUidFirst: first, taskUidCount: count, runnerUid } = this.o;
    const r = await this.root('identity', [task, String(first), String(count), String(runnerUid), create ? '1' : '0']);
    if (r.exitCode !== 0) return refused(r.exitCode, r.stderr);
    const uid = Number(/uid=(\d*)/.exec(r.stdout.toString())?.[1] || Number.NaN);
    if (!Number.isInteger(uid)) return undefined;
    this.uids.set(task, uid);
    return uid;
  }

  private async asTask(
    req: { task: string },
    script: keyof typeof TASK_SCRIPTS,
    args: string[],
    options: { stdin?: string; maxOutputBytes?: number; timeoutMs?: number } = {},
  ) {
    const uid = await this.identity(req.task, true);
    if (typeof uid !== 'number') return uid ?? refusal('io_error', 'the task directory could not be made');
    const home = `${HOMES}/${req.task}`;
    return execOnce(
      this.o.container,
      [
        '/bin/sh',
        '-c',
        TASK_SCRIPTS[script],
        'sandbox-fallback',
        req.task,
        ...args.slice(0, 2),
        String(this.o.taskDiskBytes),
        ...args.slice(2),
      ],
      { ...options, user: `${uid}:${uid}`, env: [`HOME=${home}`, `TMPDIR=${home}`] },
    );
  }

  private async dispatch(req: RunnerRequest, options: CallOptions): Promise<RunnerReply<unknown>> {
    switch (req.op) {
      case 'ping':
        return { ok: true, result: { pong: true } };
      case 'create-file': {
        const shown = rel(req.filePath, req.task);
        const r = await this.asTask(req, 'create-file', [req.filePath, shown, String(Buffer.byteLength(req.content))], {
          stdin: req.content,
          timeoutMs: options.replyTimeoutMs,
        });
        if ('ok' in r) return r;
        if (r.exitCode !== 0) return refused(r.exitCode, r.stderr);
        const result: ActionResult = {
          action: 'create-file',
          path: shown,
          bytes: Buffer.byteLength(req.content),
          overwritten: r.stdout.toString().startsWith('overwritten'),
        };
        return { ok: true, result };
      }
      case 'read-file': {
        const max = this.o.maxReadBytes;
        const shown = rel(req.filePath, req.task);
        const r = await this.asTask(req, 'read-file', [req.filePath, shown, String(max + 1)], {
          timeoutMs: options.replyTimeoutMs,
        });
        if ('ok' in r) return r;
        if (r.exitCode !== 0) return refused(r.exitCode, r.stderr);
        const nl = r.stdout.indexOf(10);
        const size = Number(r.stdout.subarray(0, nl).toString());
        let data = r.stdout.subarray(nl + 1);
        const truncated = data.length > max;
        data = data.subarray(0, max);
        const text = decodeText(data, truncated);
        const result: ActionResult = {
          action: 'read-file',
          path: shown,
          size,
          content: text ?? '',
          binary: text === undefined,
          truncated,
        };
        return { ok: true, result };
      }
      case 'list-files':
        return this.list(req, options);
      case 'execute-command':
        return this.execute(req, options);
      case 'cancel-task':
        await this.cancelTask(req.task);
        return { ok: true, result: {} };
      case 'cleanup': {
        const { taskUidFirst: first, taskUidCount: count } = this.o;
        const r = await this.root('cleanup', [String(Math.floor(req.maxAgeMs / 1000)), String(first), String(count)]);
        this.uids.clear();
        return { ok: true, result: { removed: Number(r.stdout.toString().trim()) || 0 } };
      }
      case 'remove-task': {
        const { taskUidFirst: first, taskUidCount: count } = this.o;
        const r = await this.root('cleanup', ['0', String(first), String(count), req.task]);
        this.uids.delete(req.task);
        return { ok: true, result: { removed: Number(r.stdout.toString().trim()) > 0 } };
      }
      case 'export':
        if (req.stop) await this.cancelTask(req.task);
        return { ok: true, result: await this.exportViaArchive(req) };
    }
  }

  private async list(req: Extract<RunnerRequest, { op: 'list-files' }>, options: CallOptions) {
    const root = rel(req.path, req.task);
    const r = await this.asTask(
      req,
      'list-files',
      [req.path, root, String(this.o.listMaxDepth), String(this.o.listMaxEntries + 1)],
      { timeoutMs: options.replyTimeoutMs },
    );
    if ('ok' in r) return r;
    if (r.exitCode !== 0) return refused(r.exitCode, r.stderr);
    const types: Record<string, FileEntry['type']> = { f: 'file', d: 'dir', l: 'symlink' };
    const files: FileEntry[] = r.stdout
      .toString('utf8')
      .split('\0')
      .filter((l) => l.length > 0)
      .map((l) => {
        const [t = '', size = '0', ...rest] = l.split(' ');
        const name = rest.join(' ');
        const type = types[t] ?? 'other';
        const p = name === '' ? root : root === '.' ? name : `${root}/${name}`;
        return { path: p, size: type === 'dir' ? 0 : Number(size), type };
      });
    const truncated = files.length > this.o.listMaxEntries;
    const result: ActionResult = {
      action: 'list-files',
      path: root,
      files: files.slice(0, this.o.listMaxEntries),
      truncated,
    };
    return { ok: true as const, result };
  }

  private async execute(
    req: Extract<RunnerRequest, { op: 'execute-command' }>,
    options: CallOptions,
  ): Promise<RunnerReply<unknown>> {
    const started = performance.now();
    const seconds = (req.timeoutMs / 1000).toFixed(3);
    const run = this.asTask(req, 'execute-command', [req.cwd, rel(req.cwd, req.task), seconds, req.command], {
      maxOutputBytes: req.maxOutputBytes,
      timeoutMs: options.replyTimeoutMs,
    });
    const watch = this.watchQuota(req.task, run);
    const signal = options.signal;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        void this.call({ op: 'cancel-task', task: req.task }, { replyTimeoutMs: 60_000 }).catch(() => undefined);
        reject(
          new SandboxAbortedError('execute-command aborted; its process group was killed', { cause: signal?.reason }),
        );
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const r = await Promise.race([run, aborted]);
      if ('ok' in r) return r;
      const stderr = r.stderr.toString('utf8');
      if (r.exitCode === REFUSED && stderr.startsWith(REFUSED_MARK)) return refused(r.exitCode, r.stderr);
      const mark = stderr.lastIndexOf(`\n${QUOTA_MARK}`);
      if ((await watch) || (r.exitCode === OVER_QUOTA && (mark >= 0 || r.stderrTruncated))) {
        const used = mark >= 0 ? Number(stderr.slice(mark + QUOTA_MARK.length + 1)) : Number.NaN;
        const quotaMb = (this.o.taskDiskBytes / 1048576).toFixed(1);
        const usedText = Number.isFinite(used) ? `${(used / 1048576).toFixed(1)} MB` : 'its limit';
        return refusal(
          'disk_quota_exceeded',
          `the command was stopped: the task's files reached ${usedText}, its disk quota is ${quotaMb} MB; delete files to go on`,
        );
      }
      const durationMs = performance.now() - started;
      const timedOut = r.exitCode === 137 && durationMs >= req.timeoutMs * 0.95;
      const marker = `\n[… output truncated at ${req.maxOutputBytes} bytes]`;
      const result: ActionResult = {
        action: 'execute-command',
        exitCode: timedOut ? 124 : r.exitCode,
        stdout: r.stdout.toString('utf8') + (r.stdoutTruncated ? marker : ''),
        stderr: stderr + (r.stderrTruncated ? marker : ''),
        timedOut,
        truncated: r.stdoutTruncated || r.stderrTruncated,
        durationMs: Math.round(durationMs * 1000) / 1000,
      };
      return { ok: true, result };
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * While a command runs, measures its task's usage every QUOTA_WATCH_MS (a root exec each) and
   * kills every process of the task's uid once it grew past the quota. Resolves to whether it did.
   */
  private async watchQuota(task: string, run: Promise<unknown>): Promise<boolean> {
    if (this.o.taskDiskBytes <= 0) return false;
    let done = false;
    void run.finally(() => {
      done = true;
    });
    const usage = async () => Number((await this.root('usage', [task])).stdout.toString().trim());
    try {
      const first = await usage();
      const limit = Math.max(this.o.taskDiskBytes, first) + 64 * 1024;
      while (!done) {
        await new Promise((resolve) => setTimeout(resolve, QUOTA_WATCH_MS));
        if (done) break;
        if ((await usage()) > limit) {
          const uid = this.uids.get(task);
          if (uid !== undefined) await this.root('cancel-task', [String(uid)]);
          return true;
        }
      }
    } catch {
      // The container went away, or the engine is busy: the after-command check still holds.
    }
    return false;
  }

  /** Kills every process of the task's uid (when it has one yet). */
  private async cancelTask(task: string): Promise<void> {
    const uid = await this.identity(task, false);
    if (typeof uid === 'number') await this.root('cancel-task', [String(uid)]);
  }

  private async exportViaArchive(req: Extract<RunnerRequest, { op: 'export' }>): Promise<ExportReply> {
    let tar: Readable;
    try {
      tar = (await this.o.container.getArchive({ path: `${WORKSPACE_ROOT}/${req.task}` })) as unknown as Readable;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return { files: [], truncated: false, omitted: 0 };
      throw toSandboxError(err, 'export');
    }
    // The archive comes in directory order; the caps apply after sorting, like the runner's.
    const all: { path: string; size: number; content?: Buffer }[] = [];
    let buffered = 0;
    const ex = extract();
    await new Promise<void>((resolve, reject) => {
      ex.on('entry', (header, stream, next) => {
        const name = header.name.replace(/^[^/]*\/?/, '');
        if (header.type !== 'file' || name === '') {
          stream.resume();
          stream.on('end', next);
          return;
        }
        const size = header.size ?? 0;
        const keep = buffered + size <= req.maxBytes;
        if (keep) buffered += size;
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => {
          if (keep) chunks.push(c as Buffer);
        });
        stream.on('end', () => {
          all.push(keep ? { path: name, size, content: Buffer.concat(chunks) } : { path: name, size });
          next();
        });
      });
      ex.on('finish', resolve);
      ex.on('error', reject);
      tar.on('error', reject);
      tar.pipe(ex);
    });
    all.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const files: ExportReply['files'] = [];
    let budget = req.maxBytes;
    let names = 0;
    let truncated = false;
    for (const f of all) {
      const nameBytes = Buffer.byteLength(f.path);
      if (files.length >= req.maxFiles || names + nameBytes > req.maxNameBytes) break;
      names += nameBytes;
      if (f.content && f.size <= budget) {
        budget -= f.size;
        files.push({ path: f.path, size: f.size, content: f.content.toString('base64') });
      } else {
        truncated = true;
        files.push({ path: f.path, size: f.size });
      }
    }
    const omitted = all.length - files.length;
    return { files, truncated: truncated || omitted > 0, omitted };
  }
}

/** A resolved container path, relative to the task directory again (for results). */
function rel(p: string, task: string): string {
  const base = `${WORKSPACE_ROOT}/${task}`;
  return p === base ? '.' : p.slice(base.length + 1);
}

function refusal(code: string, message: string): Refusal {
  return { ok: false, error: { code, message } };
}

function refused(exitCode: number, stderr: Buffer): Refusal {
  const text = stderr.toString('utf8');
  if (exitCode === REFUSED && text.startsWith(REFUSED_MARK)) {
    const nl = text.indexOf('\n');
    return refusal(text.slice(REFUSED_MARK.length, nl), text.slice(nl + 1));
  }
  return refusal('io_error', text.trim() || `exit status ${exitCode}`);
}

/** UTF-8 text, or undefined for binary (NUL bytes or invalid UTF-8 not caused by the cut). */
export function decodeText(data: Buffer, truncated: boolean): string | undefined {
  if (data.subarray(0, 8192).includes(0)) return undefined;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    return decoder.decode(data);
  } catch {
    if (!truncated) return undefined;
    for (let cut = 1; cut <= 3 && cut < data.length; cut++) {
      try {
        return decoder.decode(data.subarray(0, data.length - cut));
      } catch {
        // try a shorter prefix
      }
    }
    return undefined;
  }
}
