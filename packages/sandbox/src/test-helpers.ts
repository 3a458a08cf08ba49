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
