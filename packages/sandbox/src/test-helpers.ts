import Dockerode from 'dockerode';
import { randomBytes } from 'node:crypto';
import { DockerSandbox } from './docker-sandbox.js';
import type { DockerSandboxOptions } from './options.js';
import type { StepOutcome, ExecuteCommandResult } from '@research/contracts';

export const docker = new Dockerode();

/** Fails fast (never hangs, never skips) when the engine is not there. */
export async function requireDocker(): Promise<void> {
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 5_000));
  try {
    await Promise.race([docker.ping(), timeout]);
  } catch (err) {
    throw new Error(`Docker engine not reachable at /var/run/docker.sock — start dockerd (${String(err)})`);
  }
}

export function uniqueId(prefix = 't'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A sandbox with its own worker id and volume; `cleanup()` removes both. */
export function testSandbox(overrides: Partial<DockerSandboxOptions> = {}) {
  const workerId = overrides.workerId ?? uniqueId();
  const volume = overrides.volume ?? `${workerId}-ws`;
  const sandbox = new DockerSandbox({ workerId, volume, docker, ...overrides });
  return {
    sandbox,
    workerId,
    volume,
    async cleanup() {
      await sandbox.dispose('keep').catch(() => undefined);
      await removeWorker(workerId, volume);
    },
  };
}

export async function removeWorker(workerId: string, volume: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`research.worker=${workerId}`] } });
  await Promise.all(
    list.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  await docker
    .getVolume(volume)
    .remove()
    .catch(() => undefined);
}

/** The container of a worker, found the way an operator would (by label). */
export async function containerOf(workerId: string): Promise<Dockerode.Container> {
  const [c] = await docker.listContainers({ all: true, filters: { label: [`research.worker=${workerId}`] } });
  if (!c) throw new Error(`no container for ${workerId}`);
  return docker.getContainer(c.Id);
}

/** Runs a command as root in the container, outside the sandbox API (for inspection). */
export async function rootExec(workerId: string, cmd: string): Promise<string> {
  const container = await containerOf(workerId);
  const exec = await container.exec({ Cmd: ['sh', '-c', cmd], AttachStdout: true, AttachStderr: true, User: '0' });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  // Strip Docker's 8-byte frame headers.
  const all = Buffer.concat(chunks);
  const out: Buffer[] = [];
  for (let i = 0; i + 8 <= all.length; ) {
    const size = all.readUInt32BE(i + 4);
    out.push(all.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}

/** Unwraps an execute-command outcome (fails the test if it was refused). */
export function cmd(outcome: StepOutcome): ExecuteCommandResult {
  if (!outcome.ok) throw new Error(`command refused: ${outcome.error.code}: ${outcome.error.message}`);
  if (outcome.result.action !== 'execute-command') throw new Error(`unexpected result ${outcome.result.action}`);
  return outcome.result;
}

/** Processes in the container whose command line starts with `pattern` (an ERE). */
export async function processesMatching(workerId: string, pattern: string): Promise<string[]> {
  const out = await rootExec(workerId, `ps -eo pid=,args= | grep -E '^ *[0-9]+ ${pattern}' || true`);
  return out.split('\n').filter((l) => l.trim().length > 0);
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}

/**
 * What one task's commands try against another task sharing the container, and against the
 * runner: read and replace its files, find its processes (by /proc/<pid>/cwd, as an attacker
 * would, and by the command line anyone may read) and kill them, look into their
 * /proc/<pid>/{fd,environ,cwd}, and write forged replies into the runner's stdout. Prints one
 * `key=value` line per attempt.
 */
export function attackScript(victim: string): string {
  return `
V=${victim}
cat /workspace/$V/secret.txt >/dev/null 2>&1 && echo read=ok || echo read=denied
(echo FORGED > /workspace/$V/secret.txt) 2>/dev/null && echo write=ok || echo write=denied
found=0; killed=0
for d in /proc/[0-9]*; do
  p=\${d#/proc/}; [ "$p" = $$ ] && continue
  case "$(readlink $d/cwd 2>/dev/null)" in /workspace/$V|/workspace/$V/*)
    found=$((found + 1)); kill -9 "$p" 2>/dev/null && killed=$((killed + 1));;
  esac
done
echo "cwd-targets=$found cwd-killed=$killed"
found=0; killed=0; peeked=0
for d in /proc/[0-9]*; do
  p=\${d#/proc/}
  case "$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)" in "sleep 1029"*)
    found=$((found + 1))
    { ls $d/fd || cat $d/environ || readlink $d/cwd; } >/dev/null 2>&1 && peeked=$((peeked + 1))
    kill -9 "$p" 2>/dev/null && killed=$((killed + 1));;
  esac
done
echo "cmdline-targets=$found cmdline-killed=$killed peeked=$peeked"
R=""
for d in /proc/[0-9]*; do
  case "$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)" in *opt/research/runner*) R=\${d#/proc/};; esac
done
echo "runner-found=$([ -n "$R" ] && echo yes || echo no)"
ls /proc/$R/fd >/dev/null 2>&1 && echo runner-fd=ok || echo runner-fd=denied
cat /proc/$R/environ >/dev/null 2>&1 && echo runner-environ=ok || echo runner-environ=denied
forged='{"ok":true,"result":{"action":"execute-command","exitCode":0,"stdout":"FORGED","stderr":"","timedOut":false,"truncated":false,"durationMs":1}}'
{ for i in $(seq 1 3000); do printf '{"id":%d,%s\\n' "$i" "\${forged#\\{}"; done > /proc/$R/fd/1; } 2>/dev/null && echo forge=ok || echo forge=denied
kill -9 "$R" 2>/dev/null && echo runner-kill=ok || echo runner-kill=denied
`;
}

/** The victim's command: waits (a marked `sleep` beside it) until the test releases it. */
export const VICTIM_COMMAND =
  'sleep 1029 & for i in $(seq 1 600); do [ -e release ] && break; sleep 0.1; done; kill %1 2>/dev/null; cat secret.txt';

export const DENIED = [
  'read=denied',
  'write=denied',
  'cwd-targets=0 cwd-killed=0',
  'cmdline-targets=1 cmdline-killed=0 peeked=0',
  'runner-found=yes',
  'runner-fd=denied',
  'runner-environ=denied',
  'forge=denied',
  'runner-kill=denied',
];
