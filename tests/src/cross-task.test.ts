import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerWith, rootExec } from './docker-exec.js';
import {
  attackScript,
  attacksDenied,
  block,
  buildImage,
  NO_CAPABILITIES,
  removeImage,
  requireServices,
  ROOT_ONLY_DOCKERFILE,
  sleep,
  System,
  type Spawned,
  VICTIM_COMMAND,
} from '@research/testing';
import { commandResult, stepOutcomes, type TaskEvents } from './fakes.js';

/**
 * One task's commands attack another task running at the same time (`attackScript`: its files,
 * its processes, the runner's reply channel), through the real API, a real worker and its Docker
 * sandbox, in each way a worker can hold its sandbox.
 */
const rootOnly = `research-sandbox-rootonly-${randomUUID().slice(0, 8)}:test`;
const MODES: { name: string; env: Record<string, string>; sameContainer: boolean }[] = [
  { name: 'the default worker mode', env: {}, sameContainer: true },
  {
    name: 'worker mode on a root-only image shaped like the production one',
    env: { SANDBOX_IMAGE: rootOnly },
    sameContainer: true,
  },
  { name: 'SANDBOX_ISOLATION=task', env: { SANDBOX_ISOLATION: 'task', SANDBOX_POOL_SIZE: '2' }, sameContainer: false },
];

let sys: System;

beforeAll(async () => {
  await requireServices();
  await buildImage(rootOnly, ROOT_ONLY_DOCKERFILE);
  sys = new System();
  await sys.startApi();
});

afterAll(async () => {
  await sys?.close();
  await removeImage(rootOnly);
});

async function stepsOf(id: string): Promise<TaskEvents> {
  return sys.events(id);
}

describe.each(MODES)('cross-task attacks in $name', ({ env, sameContainer }) => {
  const workerId = `xtask-${randomUUID().slice(0, 8)}`;
  let worker: Spawned;

  beforeAll(async () => {
    worker = await sys.startWorker(workerId, { ...env, SANDBOX_COMMAND_TIMEOUT_MS: '120000', WORKER_CONCURRENCY: '4' });
  });
  afterAll(async () => {
    await sys.stop(worker);
  });

  /** The container a task runs in: the worker's, or the task's own slot. */
  async function containerOf(taskId: string): Promise<Docker.Container> {
    if (sameContainer) return containerWith(`research.worker=${workerId}`);
    const slot = await sys.redis.hget(`${sys.prefix}:task:${taskId}`, 'sandboxSlot');
    return containerWith(`research.slot=${slot}`);
  }

  it("cannot read, replace or kill another task's work, look into its processes, or forge the runner's replies; commands hold no capabilities", async () => {
    const a = await sys.submit({
      prompt: [
        block({ action: 'create-file', filePath: 'secret.txt', content: 'A-secret' }),
        block({ action: 'execute-command', command: VICTIM_COMMAND }),
      ].join('\n'),
    });
    await sys.waitFor(a, (v) => v.steps.some((s) => s.index === 1 && s.status === 'running'));
    const victimBox = await containerOf(a);
    for (let i = 0; i < 200 && !(await rootExec(victimBox, 'ps -eo args')).includes('sleep 1029'); i++)
      await sleep(100);

    const b = await sys.submit({
      prompt: [
        block({ action: 'execute-command', command: attackScript(a) }),
        block({ action: 'execute-command', command: 'grep -E "^(Cap|NoNewPrivs)" /proc/self/status' }),
      ].join('\n'),
    });
    const vb = await sys.waitFinal(b);
    expect(vb.status).toBe('completed');
    const [attacked, caps] = stepOutcomes(await stepsOf(b)).map(commandResult);
    // Another container does not even show the victim's processes.
    expect(attacked?.stdout.trim().split('\n')).toEqual(attacksDenied(sameContainer));
    expect(caps?.stdout.trim().split('\n')).toEqual(NO_CAPABILITIES);

    // The victim was never touched: its command ran to its end and its file is its own.
    await rootExec(victimBox, `touch /workspace/${a}/release`);
    const va = await sys.waitFinal(a);
    expect(va.status).toBe('completed');
    const victim = commandResult(stepOutcomes(await stepsOf(a))[1]);
    expect(victim).toMatchObject({ exitCode: 0, stdout: 'A-secret' });
    expect(await (await sys.request(`/v1/jobs/${a}/files/secret.txt`)).text()).toBe('A-secret');
  });
});
