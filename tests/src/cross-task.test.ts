import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRootOnlyImage, containerWith, docker, rootExec } from './docker-exec.js';
import { block, requireServices, sleep, System, type Spawned } from '@research/testing';
import { commandResult, stepOutcomes, type TaskEvents } from './fakes.js';

/**
 * One task's commands attack another task running at the same time, through the real API, a
 * real worker and its Docker sandbox: read and replace its files, find its processes (by
 * /proc/<pid>/cwd, and by the command line anyone may read) and kill them, look into their and
 * the runner's /proc/<pid>/{fd,environ}, write forged replies into the runner's stdout (the reply
 * channel to the worker) and kill the runner. Each attempt prints one `key=value` line.
 */
function attack(victim: string): string {
  return `V=${victim}
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
    { ls $d/fd || cat $d/environ; } >/dev/null 2>&1 && peeked=$((peeked + 1))
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
kill -9 "$R" 2>/dev/null && echo runner-kill=ok || echo runner-kill=denied`;
}

/** The victim's command: runs (a marked `sleep` beside it) until the test releases it. */
const VICTIM =
  'sleep 1029 & for i in $(seq 1 900); do [ -e release ] && break; sleep 0.1; done; kill %1 2>/dev/null; cat secret.txt';

const NO_CAPS = [
  'CapInh:\t0000000000000000',
  'CapPrm:\t0000000000000000',
  'CapEff:\t0000000000000000',
  'CapBnd:\t0000000000000000',
  'CapAmb:\t0000000000000000',
  'NoNewPrivs:\t1',
];

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
  await buildRootOnlyImage(rootOnly);
  sys = new System();
  await sys.startApi();
});

afterAll(async () => {
  await sys?.close();
  await docker
    .getImage(rootOnly)
    .remove({ force: true })
    .catch(() => undefined);
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
        block({ action: 'execute-command', command: VICTIM }),
      ].join('\n'),
    });
    await sys.waitFor(a, (v) => v.steps.some((s) => s.index === 1 && s.status === 'running'));
    const victimBox = await containerOf(a);
    for (let i = 0; i < 200 && !(await rootExec(victimBox, 'ps -eo args')).includes('sleep 1029'); i++)
      await sleep(100);

    const b = await sys.submit({
      prompt: [
        block({ action: 'execute-command', command: attack(a) }),
        block({ action: 'execute-command', command: 'grep -E "^(Cap|NoNewPrivs)" /proc/self/status' }),
      ].join('\n'),
    });
    const vb = await sys.waitFinal(b);
    expect(vb.status).toBe('completed');
    const [attacked, caps] = stepOutcomes(await stepsOf(b)).map(commandResult);
    expect(attacked?.stdout.trim().split('\n')).toEqual([
      'read=denied',
      'write=denied',
      'cwd-targets=0 cwd-killed=0',
      // Another container does not even show the victim's processes.
      `cmdline-targets=${sameContainer ? 1 : 0} cmdline-killed=0 peeked=0`,
      'runner-found=yes',
      'runner-fd=denied',
      'runner-environ=denied',
      'forge=denied',
      'runner-kill=denied',
    ]);
    expect(caps?.stdout.trim().split('\n')).toEqual(NO_CAPS);

    // The victim was never touched: its command ran to its end and its file is its own.
    await rootExec(victimBox, `touch /workspace/${a}/release`);
    const va = await sys.waitFinal(a);
    expect(va.status).toBe('completed');
    const victim = commandResult(stepOutcomes(await stepsOf(a))[1]);
    expect(victim).toMatchObject({ exitCode: 0, stdout: 'A-secret' });
    expect(await (await sys.request(`/v1/jobs/${a}/files/secret.txt`)).text()).toBe('A-secret');
  });
});
