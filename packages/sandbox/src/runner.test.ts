import { describe, expect, it } from 'vitest';
import { rootExec, runCommand, useImage, useSandbox } from './test-helpers.js';

describe('runner specifics', () => {
  const env = useSandbox({}, { mode: 'runner' });
  const sb = env.sandbox;
  const task = 'runner';

  it('answers when the command exits even if a background job keeps its stdout open', async () => {
    const r = await runCommand(sb, task, 'sleep 1010 & echo done', { timeoutMs: 30_000 });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'done\n', timedOut: false });
    await sb.cancelTask(task);
  });

  it('times out a command that closed its stdout early and keeps running', async () => {
    const r = await runCommand(sb, task, 'echo hi; exec >&- 2>&-; sleep 1011', { timeoutMs: 1_000 });
    expect(r).toMatchObject({ timedOut: true, stdout: 'hi\n' });
  });

  it('gives every command a fresh shell: no state leaks between commands', async () => {
    await runCommand(sb, task, 'export LEAK=1; cd /tmp; leakfn() { :; }');
    const command =
      'echo "[$LEAK][$OLDPWD]"; pwd; declare -F leakfn; set | grep -c "__resea""rch" || true; printf "%s|" "$BASH_EXECUTION_STRING"';
    const r = await runCommand(sb, task, command);
    expect(r.stdout).toBe(`[][]\n/workspace/${task}\n0\n${command}|`);
  });

  it('runs every command at nice 19, from a warm shell or a cold one, and keeps the runner and its shell starter at 0', async () => {
    const niceOf = "cut -d' ' -f19 /proc/$$/stat";
    const nices: string[] = [];
    for (let i = 0; i < 6; i++) {
      nices.push((await runCommand(sb, `${task}-nice`, niceOf)).stdout.trim());
      // Every other command after a pause: the keeper has a warm shell ready for the next one.
      if (i % 2 === 1) await new Promise((r) => setTimeout(r, 150));
    }
    expect(nices).toEqual(['19', '19', '19', '19', '19', '19']);
    // The pattern is split so that this script's own command line does not match it.
    const runner = await rootExec(
      env.workerId,
      `for d in /proc/[0-9]*; do case "$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)" in *"/opt/resear""ch/runner "*) echo "$(cat $d/comm) $(cut -d' ' -f19 < $d/stat)";; esac; done`,
    );
    expect(runner.trim().split('\n').sort()).toEqual(['python3 0', 'research-shells 0']);
  });

  it('runs bash, with its features', async () => {
    const r = await runCommand(sb, task, 'set -o pipefail; [[ abc == a* ]] && echo {1..3}; false | true; echo "rc=$?"');
    expect(r.stdout).toBe('1 2 3\nrc=1\n');
  });

  it('passes large commands (over a pipe buffer) and odd characters through unchanged', async () => {
    const payload = `x'"\\$\`é\t${'y'.repeat(60_000)}`;
    const r = await runCommand(sb, task, `cat <<'EOF'\n${payload}\nEOF`);
    expect(r.stdout).toBe(`${payload}\n`);
  });

  it('refuses a command with a NUL byte', async () => {
    const o = await sb.run(task, { action: 'execute-command', command: 'echo a\0b' });
    expect(o.ok ? 'ok' : o.error.code).toBe('invalid_action');
  });
});

describe('warm shells under many active tasks', () => {
  const env = useSandbox({}, { mode: 'runner' });
  const sb = env.sandbox;
  // The runner keeps shells ready for its 4 most recently active tasks (warmTasks).
  const tasks = Array.from({ length: 6 }, (_, i) => `warm-${i}`);
  /** Processes of each uid in the container, by a root scan of /proc. */
  const processesOf = async (uids: string[]): Promise<number[]> => {
    const out = await rootExec(
      env.workerId,
      "for d in /proc/[0-9]*; do awk '/^Uid:/{print $2}' $d/status 2>/dev/null; done",
    );
    const seen = out.trim().split('\n');
    return uids.map((uid) => seen.filter((u) => u === uid).length);
  };
  const until = async (check: () => Promise<boolean>, what: string) => {
    for (const end = Date.now() + 15_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100)))
      if (await check()) return;
    throw new Error(`timed out waiting for ${what}`);
  };

  it("keeps no shell for a task's first command, and keeps them from its second on", async () => {
    const uid = (await runCommand(sb, 'once', 'id -u')).stdout.trim();
    // Time for the keeper to have started one, had it wanted to: it would be killed unused at
    // the task's end if this was its last command.
    await new Promise((r) => setTimeout(r, 500));
    expect(await processesOf([uid])).toEqual([0]);
    expect((await runCommand(sb, 'once', 'id -u')).stdout.trim()).toBe(uid);
    await until(async () => (await processesOf([uid]))[0]! > 0, 'the shells of a task on its second command');
    await sb.cancelTask('once');
    // Other tasks' windows below start from a quiet runner.
    await new Promise((r) => setTimeout(r, 2_200));
  });

  it('starts none ahead for tasks past the four it keeps shells for, and again once fewer are active', async () => {
    const uids: string[] = [];
    for (const t of tasks) {
      uids.push((await runCommand(sb, t, 'id -u')).stdout.trim());
      await runCommand(sb, t, 'true');
    }
    // The first four get their shells (on their second command); the fifth and sixth came
    // while five and six tasks were active, and would only have evicted another's shells
    // before they were used.
    await until(async () => (await processesOf(uids.slice(0, 4))).every((n) => n > 0), "the first four tasks' shells");
    expect(await processesOf(uids.slice(4))).toEqual([0, 0]);
    // Commands of those tasks still run, each in a shell of its own.
    expect((await runCommand(sb, tasks[5]!, 'id -u; echo ok')).stdout).toBe(`${uids[5]}\nok\n`);
    expect(await processesOf(uids.slice(4))).toEqual([0, 0]);
    // Once the others have been quiet for the window (2 s), an active task gets shells again.
    await new Promise((r) => setTimeout(r, 2_200));
    await runCommand(sb, tasks[5]!, 'true');
    await until(async () => (await processesOf([uids[5]!]))[0]! > 0, "the sixth task's shells");
  });
});

describe('the shell starter', () => {
  const env = useSandbox({}, { mode: 'runner' });
  const sb = env.sandbox;
  const task = 'starter';
  // Long enough for the keeper to have a warm shell ready for the task's next command.
  const pause = () => new Promise((r) => setTimeout(r, 150));
  const pidOf = async (comm: string) => (await rootExec(env.workerId, `pgrep -u 99999 -x ${comm} || true`)).trim();

  it("starts warm shells as the runner's own children: the runner reads each command's exit status and signal", async () => {
    await runCommand(sb, task, 'true');
    const runner = await pidOf('python3');
    const seen: (string | number)[] = [];
    for (const command of ['exit 3', 'kill -TERM $$', 'kill -USR1 $$', 'echo "$PPID $(cat /proc/$PPID/comm)"']) {
      await pause();
      const r = await runCommand(sb, task, command);
      seen.push(r.stdout === '' ? r.exitCode : r.stdout.trim());
    }
    expect(seen).toEqual([3, 143, 138, `${runner} python3`]);
  });

  it('when the starter is gone, the runner starts the shells itself and commands go on', async () => {
    const starter = await pidOf('research-shells');
    expect(starter).toMatch(/^\d+$/);
    await rootExec(env.workerId, `kill -KILL ${starter}`);
    for (let i = 0; i < 4; i++) {
      await pause();
      expect(await runCommand(sb, task, "echo ok; cut -d' ' -f19 /proc/$$/stat; exit 4")).toMatchObject({
        stdout: 'ok\n19\n',
        exitCode: 4,
      });
    }
    // Reaped, not left a zombie.
    expect(await pidOf('research-shells')).toBe('');
  });
});

describe('image without python3', () => {
  const tag = useImage('nopython', 'FROM research-sandbox:latest\nUSER root\nRUN rm -f /usr/bin/python3*\n');
  const env = useSandbox({ image: tag }, { ensure: false });

  it('falls back to per-call exec and still does all four actions', async () => {
    await env.sandbox.ensure();
    expect(env.sandbox.mode).toBe('exec');
    const t = 'nopy';
    expect((await env.sandbox.run(t, { action: 'create-file', filePath: 'a/b.txt', content: 'hi' })).ok).toBe(true);
    const read = await env.sandbox.run(t, { action: 'read-file', filePath: 'a/b.txt' });
    expect(read.ok && read.result).toMatchObject({ content: 'hi' });
    const list = await env.sandbox.run(t, { action: 'list-files' });
    expect(list.ok && list.result.action === 'list-files' && list.result.files.map((f) => f.path)).toEqual([
      'a',
      'a/b.txt',
    ]);
    expect((await runCommand(env.sandbox, t, 'command -v python3 || echo none')).stdout).toBe('none\n');
  });
});
