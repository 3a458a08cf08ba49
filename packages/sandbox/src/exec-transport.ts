import type Dockerode from 'dockerode';
import { extract } from 'tar-stream';
import type { Readable } from 'node:stream';
import type { ActionResult, FileEntry } from '@research/contracts';
import { toSandboxError } from './docker-errors.js';
import { SandboxAbortedError } from './errors.js';
import { execOnce } from './exec.js';
import { WORKSPACE_ROOT } from './paths.js';
import type { CallOptions, ExportReply, RunnerReply, RunnerRequest, Transport } from './protocol.js';

export interface ExecTransportOptions {
  container: Dockerode.Container;
  user: string | undefined;
  maxReadBytes: number;
  listMaxEntries: number;
  listMaxDepth: number;
}

/** Exit status by which the scripts below say "refused"; stderr then holds `<mark>code\nmessage`. */
const REFUSED = 90;
const REFUSED_MARK = 'sandbox-refused:';

/**
 * The checks every file action shares: the task directory must be a real directory and the
 * target, symlinks resolved (`realpath -m` resolves the existing prefix of a new path), must
 * stay inside it. Needs GNU coreutils, like the rest of the fallback.
 */
const PRELUDE = `
set -u
refuse() { printf '${REFUSED_MARK}%s\\n%s' "$1" "$2" >&2; exit ${REFUSED}; }
inside() { case "$1" in "$base"|"$base"/*) return 0;; *) return 1;; esac; }
task="$1"; target="$2"; shown="$3"
base=${WORKSPACE_ROOT}/$task
mkdir -p "$base" 2>/dev/null
if [ -L "$base" ] || [ ! -d "$base" ]; then refuse path_outside_workspace "the task directory is not a directory"; fi
touch -c "$base"
real=$(realpath -m -- "$target") || refuse io_error "cannot resolve $shown"
inside "$real" || refuse path_outside_workspace "$shown resolves outside the task directory through a symlink"
`;

const SCRIPTS = {
  'create-file': `${PRELUDE}
[ "$real" = "$base" ] && refuse is_directory "$shown is the task directory"
[ -d "$real" ] && refuse is_directory "$shown is a directory"
parent=$(dirname -- "$real")
mkdir -p -- "$parent" 2>/dev/null || refuse not_a_directory "a parent of $shown is a file"
inside "$(realpath -m -- "$parent")" || refuse path_outside_workspace "$shown resolves outside the task directory through a symlink"
if [ -e "$real" ]; then echo overwritten; else echo created; fi
cat > "$real" || refuse io_error "cannot write $shown"
`,
  'read-file': `${PRELUDE}
[ -e "$real" ] || refuse not_found "$shown does not exist"
[ -d "$real" ] && refuse is_directory "$shown is a directory; use list-files"
[ -f "$real" ] || refuse not_a_file "$shown is not a regular file"
stat -c %s -- "$real"
head -c "$4" -- "$real"
`,
  'list-files': `${PRELUDE}
[ -e "$real" ] || refuse not_found "$shown does not exist"
if [ ! -d "$real" ]; then printf 'f %s \\0' "$(stat -c %s -- "$real")"; exit 0; fi
cd "$real" && find . -mindepth 1 -maxdepth "$4" -printf '%y %s %P\\0' | sort -z -k3 | head -z -n "$5"
`,
  'execute-command': `${PRELUDE}
[ -d "$real" ] || refuse not_found "cwd $shown is not an existing directory"
cd "$real" || exit 126
mkdir -p /tmp/research-sandbox 2>/dev/null
sh=/bin/sh; [ -x /bin/bash ] && sh=/bin/bash
# timeout(1) makes its own process group and SIGKILLs all of it at the deadline.
timeout -s KILL "$4" "$sh" -c "$5" </dev/null &
pid=$!
pidfile=/tmp/research-sandbox/$task.$pid
echo "$pid" > "$pidfile"
wait "$pid"; rc=$?
rm -f "$pidfile"
exit $rc
`,
  'cancel-task': `
for f in /tmp/research-sandbox/"$1".*; do
  [ -f "$f" ] || continue
  kill -KILL "-$(cat "$f")" 2>/dev/null
  rm -f "$f"
done
exit 0
`,
  cleanup: `
now=$(date +%s); n=0
for d in ${WORKSPACE_ROOT}/* ${WORKSPACE_ROOT}/.[!.]*; do
  name=\${d##*/}
  case "$name" in ''|*[!A-Za-z0-9_-]*) continue;; esac
  [ -e "$d" ] || [ -L "$d" ] || continue
  m=$(stat -c %Y -- "$d") || continue
  if [ $((now - m)) -ge "$1" ]; then
    chmod -R u+rwx -- "$d" 2>/dev/null
    rm -rf -- "$d" && n=$((n + 1))
  fi
done
echo $n
`,
} as const;

/**
 * The fallback when the runner cannot start (no python3 in the image): every request is its own
 * `docker exec` of a small POSIX shell script. Same requests and replies as the runner, ~45 ms
 * each. Limits: needs GNU coreutils/findutils; a background job that keeps the command's stdout
 * open delays the reply until the timeout.
 */
export class ExecTransport implements Transport {
  readonly kind = 'exec' as const;
  readonly alive = true;

  constructor(private readonly o: ExecTransportOptions) {}

  async call<T>(req: RunnerRequest, options: CallOptions): Promise<RunnerReply<T>> {
    if (options.signal?.aborted)
      throw new SandboxAbortedError('aborted before start', { cause: options.signal.reason });
    const reply = await this.dispatch(req, options);
    return reply as RunnerReply<T>;
  }

  async close(): Promise<void> {}

  private sh(
    script: string,
    args: string[],
    options: { stdin?: string; maxOutputBytes?: number; timeoutMs?: number } = {},
  ) {
    return execOnce(this.o.container, ['/bin/sh', '-c', script, 'sandbox-fallback', ...args], {
      ...(this.o.user ? { user: this.o.user } : {}),
      ...options,
    });
  }

  private async dispatch(req: RunnerRequest, options: CallOptions): Promise<RunnerReply<unknown>> {
    switch (req.op) {
      case 'ping':
        return { ok: true, result: { pong: true } };
      case 'create-file': {
        const r = await this.sh(SCRIPTS['create-file'], [req.task, req.filePath, rel(req.filePath, req.task)], {
          stdin: req.content,
          timeoutMs: options.replyTimeoutMs,
        });
        if (r.exitCode !== 0) return refused(r.exitCode, r.stderr);
        const result: ActionResult = {
          action: 'create-file',
          path: rel(req.filePath, req.task),
          bytes: Buffer.byteLength(req.content),
          overwritten: r.stdout.toString().startsWith('overwritten'),
        };
        return { ok: true, result };
      }
      case 'read-file': {
        const max = this.o.maxReadBytes;
        const r = await this.sh(
          SCRIPTS['read-file'],
          [req.task, req.filePath, rel(req.filePath, req.task), String(max + 1)],
          { timeoutMs: options.replyTimeoutMs },
        );
        if (r.exitCode !== 0) return refused(r.exitCode, r.stderr);
        const nl = r.stdout.indexOf(10);
        const size = Number(r.stdout.subarray(0, nl).toString());
        let data = r.stdout.subarray(nl + 1);
        const truncated = data.length > max;
        data = data.subarray(0, max);
        const text = decodeText(data, truncated);
        const result: ActionResult = {
          action: 'read-file',
          path: rel(req.filePath, req.task),
          size,
          content: text ?? '',
          binary: text === undefined,
          truncated,
        };
        return { ok: true, result };
      }
      case 'list-files': {
        const r = await this.sh(
          SCRIPTS['list-files'],
          [req.task, req.path, rel(req.path, req.task), String(this.o.listMaxDepth), String(this.o.listMaxEntries + 1)],
          { timeoutMs: options.replyTimeoutMs },
        );
        if (r.exitCode !== 0) return refused(r.exitCode, r.stderr);
        const root = rel(req.path, req.task);
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
        return { ok: true, result };
      }
      case 'execute-command':
        return this.execute(req, options);
      case 'cancel-task':
        await this.sh(SCRIPTS['cancel-task'], [req.task]);
        return { ok: true, result: {} };
      case 'cleanup': {
        const r = await this.sh(SCRIPTS.cleanup, [String(Math.floor(req.maxAgeMs / 1000))]);
        return { ok: true, result: { removed: Number(r.stdout.toString().trim()) || 0 } };
      }
      case 'export':
        return { ok: true, result: await this.exportViaArchive(req.task, req.maxBytes) };
    }
  }

  private async execute(
    req: Extract<RunnerRequest, { op: 'execute-command' }>,
    options: CallOptions,
  ): Promise<RunnerReply<unknown>> {
    const started = performance.now();
    const seconds = (req.timeoutMs / 1000).toFixed(3);
    const run = this.sh(SCRIPTS['execute-command'], [req.task, req.cwd, rel(req.cwd, req.task), seconds, req.command], {
      maxOutputBytes: req.maxOutputBytes,
      timeoutMs: options.replyTimeoutMs,
    });
    const signal = options.signal;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        void this.sh(SCRIPTS['cancel-task'], [req.task]).catch(() => undefined);
        reject(
          new SandboxAbortedError('execute-command aborted; its process group was killed', { cause: signal?.reason }),
        );
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const r = await Promise.race([run, aborted]);
      if (r.exitCode === REFUSED && r.stderr.toString().startsWith(REFUSED_MARK)) return refused(r.exitCode, r.stderr);
      const durationMs = performance.now() - started;
      const timedOut = r.exitCode === 137 && durationMs >= req.timeoutMs * 0.95;
      const marker = `\n[… output truncated at ${req.maxOutputBytes} bytes]`;
      const result: ActionResult = {
        action: 'execute-command',
        exitCode: timedOut ? 124 : r.exitCode,
        stdout: r.stdout.toString('utf8') + (r.stdoutTruncated ? marker : ''),
        stderr: r.stderr.toString('utf8') + (r.stderrTruncated ? marker : ''),
        timedOut,
        truncated: r.stdoutTruncated || r.stderrTruncated,
        durationMs: Math.round(durationMs * 1000) / 1000,
      };
      return { ok: true, result };
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  private async exportViaArchive(task: string, maxBytes: number): Promise<ExportReply> {
    let tar: Readable;
    try {
      tar = (await this.o.container.getArchive({ path: `${WORKSPACE_ROOT}/${task}` })) as unknown as Readable;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return { files: [], truncated: false };
      throw toSandboxError(err, 'export');
    }
    const files: ExportReply['files'] = [];
    let budget = maxBytes;
    let truncated = false;
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
        const keep = size <= budget;
        if (keep) budget -= size;
        else truncated = true;
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => {
          if (keep) chunks.push(c as Buffer);
        });
        stream.on('end', () => {
          files.push(
            keep ? { path: name, size, content: Buffer.concat(chunks).toString('base64') } : { path: name, size },
          );
          next();
        });
      });
      ex.on('finish', resolve);
      ex.on('error', reject);
      tar.on('error', reject);
      tar.pipe(ex);
    });
    files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { files, truncated };
  }
}

/** A resolved container path, relative to the task directory again (for results). */
function rel(p: string, task: string): string {
  const base = `${WORKSPACE_ROOT}/${task}`;
  return p === base ? '.' : p.slice(base.length + 1);
}

function refused(exitCode: number, stderr: Buffer): RunnerReply<never> {
  const text = stderr.toString('utf8');
  if (exitCode === REFUSED && text.startsWith(REFUSED_MARK)) {
    const nl = text.indexOf('\n');
    return { ok: false, error: { code: text.slice(REFUSED_MARK.length, nl), message: text.slice(nl + 1) } };
  }
  return { ok: false, error: { code: 'io_error', message: text.trim() || `exit status ${exitCode}` } };
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
