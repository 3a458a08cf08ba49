import { describe, expect, it } from 'vitest';
import { cmd, processesMatching, rootExec, runCommand, useSandbox, waitFor } from './test-helpers.js';

describe('resource limits', () => {
  const env = useSandbox({ pids: 48, memoryMb: 256 });
  const sb = env.sandbox;
  const task = 'bomb';

  it('contains a fork bomb with the pids limit; the container stays usable', async () => {
    const outcome = await sb.run(task, {
      action: 'execute-command',
      command: 'bomb() { bomb | bomb & }; bomb; sleep 3',
      timeoutMs: 4_000,
    });
    // The bomb hits the limit instead of the host: forks fail, the command ends or times out.
    if (outcome.ok) expect(outcome.result.action).toBe('execute-command');
    else expect(outcome.error.code).toBe('resource_exhausted');
    // The bomb's processes live on in the command's process group until the task is cancelled.
    await sb.cancelTask(task);
    let r = await sb.run(task, { action: 'execute-command', command: 'echo alive' });
    for (let i = 0; i < 20 && !r.ok; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      await sb.cancelTask(task);
      r = await sb.run(task, { action: 'execute-command', command: 'echo alive' });
    }
    expect(cmd(r).stdout).toBe('alive\n');
    // Read once the bomb is gone: while it holds every pid, not even an exec can start.
    expect(
      (
        await rootExec(env.workerId, 'cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max')
      ).trim(),
    ).toBe('48');
    const count = Number((await rootExec(env.workerId, 'ps -e --no-headers | wc -l')).trim());
    expect(count).toBeLessThan(10);
    // The task is over, as the worker says when a task ends: its idle shells go too.
    await sb.cancelTask(task);
  });

  it('cancelTask reaches a background fork bomb at once, even while no runner thread can start', async () => {
    const bomb = 'bomb2';
    // Returns at once; the bomb lives on in the background and holds the pids limit.
    await runCommand(sb, bomb, ':(){ :|:& };:');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await sb.cancelTask(bomb);
    const r = await sb.run(bomb, { action: 'execute-command', command: "ls /proc | grep -c '^[0-9]'" });
    expect(Number(cmd(r).stdout.trim())).toBeLessThan(10);
    await sb.cancelTask(bomb);
  });

  it('cancelTask also kills what left its process group (setsid), a fork bomb included', async () => {
    const escaper = 'escaper';
    await runCommand(
      sb,
      escaper,
      "setsid bash -c 'sleep 1000' >/dev/null 2>&1 </dev/null & setsid bash -c ':(){ :|:& };:' >/dev/null 2>&1 </dev/null & echo gone",
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await sb.cancelTask(escaper);
    // Another task's command runs, and nothing of the escaped processes is left.
    const r = await sb.run('after-escaper', { action: 'execute-command', command: "ls /proc | grep -c '^[0-9]'" });
    expect(Number(cmd(r).stdout.trim())).toBeLessThan(10);
  });

  it('cancelTask kills a process that made itself non-dumpable (the files under its /proc directory then belong to root)', async () => {
    const hider = 'hider';
    await runCommand(
      sb,
      hider,
      'setsid python3 -c "import ctypes, time; ctypes.CDLL(None).prctl(4, 0); time.sleep(1042)" >/dev/null 2>&1 </dev/null & echo started',
    );
    const hidden = () => processesMatching(env.workerId, 'python3 -c import ctypes');
    await waitFor(async () => (await hidden()).length > 0);
    const pid = (await hidden())[0]?.trim().split(/\s+/)[0] ?? '';
    expect(pid).toMatch(/^\d+$/);
    // Once it is not dumpable, the files under its /proc directory belong to root.
    const fdOwner = async () => (await rootExec(env.workerId, `stat -c %u /proc/${pid}/fd`)).trim();
    await waitFor(async () => (await fdOwner()) === '0');
    expect(await fdOwner()).toBe('0');
    await sb.cancelTask(hider);
    expect(await hidden()).toEqual([]);
  });

  it('applies the memory limit without extra swap; a memory hog is killed, not the sandbox', async () => {
    const limit = await rootExec(
      env.workerId,
      'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes',
    );
    expect(limit.trim()).toBe(String(256 * 1024 * 1024));
    const hog = await runCommand(sb, task, 'python3 -c "x = bytearray(600 * 1024 * 1024); print(len(x))"');
    expect(hog.exitCode).not.toBe(0);
    expect(hog.stdout).toBe('');
    expect((await runCommand(sb, task, 'echo still here')).stdout).toBe('still here\n');
  });
});
