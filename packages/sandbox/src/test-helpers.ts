import Dockerode from 'dockerode';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect } from 'vitest';
import type { StepOutcome, ExecuteCommandResult } from '@research/contracts';
import { attacksDenied, buildImage, removeImage, removeSandboxes, rootExec as rootExecIn } from '@research/testing';
import { DockerSandbox } from './docker-sandbox.js';
import type { DockerSandboxOptions } from './options.js';

export { attackScript, NO_CAPABILITIES, VICTIM_COMMAND } from '@research/testing';

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

/** Options of `useSandbox`. */
export interface UseSandboxOptions {
  /** Start the container before the tests. Default `true`; `false` for tests of `ensure()` itself. */
  ensure?: boolean;
  /** The transport the started sandbox must have chosen (checked before the tests). Default: not checked. */
  mode?: DockerSandbox['mode'];
}

/**
 * A `testSandbox` for the enclosing describe block (or file): the engine checked and the
 * container started before its tests, both removed after them.
 */
export function useSandbox(overrides: Partial<DockerSandboxOptions> = {}, options: UseSandboxOptions = {}) {
  const env = testSandbox(overrides);
  beforeAll(async () => {
    await requireDocker();
    if (options.ensure === false) return;
    await env.sandbox.ensure();
    if (options.mode) expect(env.sandbox.mode).toBe(options.mode);
  });
  afterAll(() => env.cleanup());
  return env;
}

/** Both transports, for `describe.each`: the runner in the container, and per-call exec (an image without python3). */
export const TRANSPORTS = [
  { mode: 'runner' as const, useRunner: true },
  { mode: 'exec' as const, useRunner: false },
];

/**
 * An image built from `dockerfile` (FROM the local sandbox image) before the tests of the
 * enclosing block and removed after them; returns its unique tag. Call it before the
 * `useSandbox` that runs on it: "after" hooks run in reverse, so the sandbox goes first.
 */
export function useImage(name: string, dockerfile: string): string {
  const tag = `research-sandbox-${name}-${uniqueId()}:test`;
  beforeAll(async () => {
    await requireDocker();
    await buildImage(tag, dockerfile);
  });
  afterAll(() => removeImage(tag));
  return tag;
}

/** Removes a worker's container (and any pool it owned) and the volume; gone already is fine. */
export async function removeWorker(workerId: string, volume: string): Promise<void> {
  await removeSandboxes([workerId], volume);
}

/** The container of a worker, found the way an operator would (by label). */
export async function containerOf(workerId: string): Promise<Dockerode.Container> {
  const [c] = await docker.listContainers({ all: true, filters: { label: [`research.worker=${workerId}`] } });
  if (!c) throw new Error(`no container for ${workerId}`);
  return docker.getContainer(c.Id);
}

/** Runs a command as root in the worker's container, outside the sandbox API (for inspection). */
export async function rootExec(workerId: string, cmd: string): Promise<string> {
  return rootExecIn(await containerOf(workerId), cmd);
}

/** Unwraps an execute-command outcome (fails the test if it was refused). */
export function cmd(outcome: StepOutcome): ExecuteCommandResult {
  if (!outcome.ok) throw new Error(`command refused: ${outcome.error.code}: ${outcome.error.message}`);
  if (outcome.result.action !== 'execute-command') throw new Error(`unexpected result ${outcome.result.action}`);
  return outcome.result;
}

/** Runs `command` for `task` and unwraps its result (fails the test if it was refused). */
export async function runCommand(
  sb: DockerSandbox,
  task: string,
  command: string,
  options: { timeoutMs?: number } = {},
): Promise<ExecuteCommandResult> {
  return cmd(await sb.run(task, { action: 'execute-command', command, ...options }));
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

/** What the attack prints in the victim's container: it sees the victim's processes, and gets no further. */
export const DENIED = attacksDenied(true);
