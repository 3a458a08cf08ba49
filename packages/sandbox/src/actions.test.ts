import { describe, expect, it } from 'vitest';
import type { StepOutcome } from '@research/contracts';
import { InvalidTaskIdError, SandboxAbortedError } from './errors.js';
import {
  cmd,
  containerOf,
  processesMatching,
  rootExec,
  runCommand,
  TRANSPORTS,
  useSandbox,
  waitFor,
} from './test-helpers.js';

/** The four actions and their safety rules, through the runner and through the exec fallback. */
describe.each(TRANSPORTS)('actions via $mode', ({ mode, useRunner }) => {
  const env = useSandbox({ useRunner, maxOutputBytes: 1024, maxReadBytes: 4096, listMaxEntries: 50 }, { mode });
  const sb = env.sandbox;
  const task = `${mode}-task`;

  const refusedCode = (o: StepOutcome) => (o.ok ? `ok:${o.result.action}` : o.error.code);

  describe('create-file', () => {
    it('creates parent folders and reports what it wrote', async () => {
      const o = await sb.run(task, { action: 'create-file', filePath: 'deep/er/notes.md', content: '# héllo\n' });
      expect(o).toEqual({
        ok: true,
        result: { action: 'create-file', path: 'deep/er/notes.md', bytes: 9, overwritten: false },
      });
      const back = await runCommand(sb, task, 'cat deep/er/notes.md; stat -c %u deep/er/notes.md deep/er deep; id -u');
      // Files the actions create belong to the task's own uid, the one its commands run as.
      const [content, ...owners] = back.stdout.split('\n').filter(Boolean);
      expect(content).toBe('# héllo');
      expect(new Set(owners).size).toBe(1);
      expect(Number(owners[0])).toBeGreaterThanOrEqual(100_000);
    });

    it('overwrites an existing file with the full new content', async () => {
      await sb.run(task, { action: 'create-file', filePath: 'over.txt', content: 'a long first version' });
      const o = await sb.run(task, { action: 'create-file', filePath: './over.txt', content: 'short' });
      expect(o.ok && o.result).toMatchObject({ overwritten: true, bytes: 5 });
      const r = await sb.run(task, { action: 'read-file', filePath: 'over.txt' });
      expect(r.ok && r.result).toMatchObject({ content: 'short', size: 5 });
    });

    it('accepts the /workspace/<taskId>/ form', async () => {
      const o = await sb.run(task, { action: 'create-file', filePath: `/workspace/${task}/abs.txt`, content: 'x' });
      expect(o.ok && o.result).toMatchObject({ path: 'abs.txt' });
    });

    it('refuses to replace a directory', async () => {
      expect(refusedCode(await sb.run(task, { action: 'create-file', filePath: 'deep', content: 'x' }))).toBe(
        'is_directory',
      );
    });
  });

  describe('read-file', () => {
    it('reads text', async () => {
      await sb.run(task, { action: 'create-file', filePath: 'r.txt', content: 'line 1\nline 2\n' });
      expect(await sb.run(task, { action: 'read-file', filePath: 'r.txt' })).toEqual({
        ok: true,
        result: {
          action: 'read-file',
          path: 'r.txt',
          size: 14,
          content: 'line 1\nline 2\n',
          binary: false,
          truncated: false,
        },
      });
    });

    it('reports binary files as such', async () => {
      await runCommand(sb, task, "printf '\\000\\001\\002\\377' > bin.dat");
      const o = await sb.run(task, { action: 'read-file', filePath: 'bin.dat' });
      expect(o.ok && o.result).toMatchObject({ binary: true, content: '', size: 4 });
    });

    it('caps the size', async () => {
      await runCommand(sb, task, 'head -c 10000 /dev/zero | tr "\\0" b > big.txt');
      const o = await sb.run(task, { action: 'read-file', filePath: 'big.txt' });
      expect(o.ok && o.result).toMatchObject({ truncated: true, size: 10000, binary: false });
      expect(o.ok && o.result.action === 'read-file' && o.result.content.length).toBe(4096);
    });

    it('says not_found and is_directory', async () => {
      expect(refusedCode(await sb.run(task, { action: 'read-file', filePath: 'nope.txt' }))).toBe('not_found');
      expect(refusedCode(await sb.run(task, { action: 'read-file', filePath: 'deep' }))).toBe('is_directory');
    });
  });

  describe('list-files', () => {
    it('lists recursively with sizes and types', async () => {
      const t = `${task}-list`;
      await sb.run(t, { action: 'create-file', filePath: 'a.txt', content: 'abc' });
      await sb.run(t, { action: 'create-file', filePath: 'sub/b.txt', content: 'hello' });
      await runCommand(sb, t, 'ln -s a.txt link');
      const o = await sb.run(t, { action: 'list-files' });
      expect(o).toEqual({
        ok: true,
        result: {
          action: 'list-files',
          path: '.',
          truncated: false,
          files: [
            { path: 'a.txt', size: 3, type: 'file' },
            { path: 'link', size: 5, type: 'symlink' },
            { path: 'sub', size: 0, type: 'dir' },
            { path: 'sub/b.txt', size: 5, type: 'file' },
          ],
        },
      });
      const sub = await sb.run(t, { action: 'list-files', path: 'sub' });
      expect(sub.ok && sub.result).toMatchObject({
        path: 'sub',
        files: [{ path: 'sub/b.txt', size: 5, type: 'file' }],
      });
    });

    it('stops at the entry limit', async () => {
      const t = `${task}-many`;
      await runCommand(sb, t, 'for i in $(seq 1 80); do echo $i > f$i; done');
      const o = await sb.run(t, { action: 'list-files', path: '.' });
      expect(o.ok && o.result).toMatchObject({ truncated: true });
      expect(o.ok && o.result.action === 'list-files' && o.result.files.length).toBe(50);
    });

    it('says not_found', async () => {
      expect(refusedCode(await sb.run(task, { action: 'list-files', path: 'missing' }))).toBe('not_found');
    });
  });

  describe('execute-command', () => {
    it("runs in the task directory as the task's own unprivileged uid, with no capabilities", async () => {
      const r = await runCommand(
        sb,
        task,
        'pwd; id -u; stat -c %u .; grep -E "^Cap(Eff|Prm)" /proc/self/status; echo oops >&2',
      );
      expect(r).toMatchObject({ exitCode: 0, timedOut: false, truncated: false, stderr: 'oops\n' });
      const [pwd, uid, owner, ...caps] = r.stdout.split('\n').filter(Boolean);
      expect(pwd).toBe(`/workspace/${task}`);
      expect(Number(uid)).toBeGreaterThanOrEqual(100_000);
      expect(owner).toBe(uid);
      expect(caps).toEqual(['CapPrm:\t0000000000000000', 'CapEff:\t0000000000000000']);
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    });

    it('honours cwd inside the task directory', async () => {
      const r = cmd(await sb.run(task, { action: 'execute-command', command: 'pwd', cwd: 'deep/er' }));
      expect(r.stdout).toBe(`/workspace/${task}/deep/er\n`);
    });

    it('returns a non-zero exit as a result', async () => {
      const r = await runCommand(sb, task, 'echo partial; exit 7');
      expect(r).toMatchObject({ exitCode: 7, stdout: 'partial\n', timedOut: false });
      const nf = await runCommand(sb, task, 'no-such-program-xyz');
      expect(nf.exitCode).toBe(127);
      expect(nf.stderr).toContain('not found');
    });

    it('cuts output past maxOutputBytes with a marker', async () => {
      const r = await runCommand(
        sb,
        task,
        'head -c 5000 /dev/zero | tr "\\0" a; head -c 3000 /dev/zero | tr "\\0" e >&2',
      );
      expect(r.truncated).toBe(true);
      expect(r.stdout).toBe(`${'a'.repeat(1024)}\n[… output truncated at 1024 bytes]`);
      expect(r.stderr).toBe(`${'e'.repeat(1024)}\n[… output truncated at 1024 bytes]`);
      expect(r.exitCode).toBe(0);
    });

    it('kills sleep 1000 and its children at the timeout', async () => {
      const r = await runCommand(sb, task, 'echo started; sleep 1000 & sh -c "sleep 1001"; echo never', {
        timeoutMs: 1500,
      });
      expect(r).toMatchObject({ timedOut: true, exitCode: 124, stdout: 'started\n' });
      await waitFor(async () => (await processesMatching(env.workerId, 'sleep 100[01]')).length === 0);
    });

    it('kills a command that ignores SIGTERM', async () => {
      const r = await runCommand(sb, task, 'trap "" TERM INT HUP; sleep 1002', { timeoutMs: 1000 });
      expect(r.timedOut).toBe(true);
      await waitFor(async () => (await processesMatching(env.workerId, 'sleep 1002')).length === 0);
    });

    it('caps the timeout at the run option', async () => {
      const r = cmd(
        await sb.run(task, { action: 'execute-command', command: 'sleep 1003', timeoutMs: 50_000 }, { timeoutMs: 800 }),
      );
      expect(r.timedOut).toBe(true);
    });

    it('keeps concurrent outputs of two tasks apart', async () => {
      const script = (tag: string) => `for i in $(seq 1 300); do echo ${tag}-$i; echo ${tag}-err-$i >&2; done; pwd`;
      const [a, b] = await Promise.all([
        sb.run('conc-a', { action: 'execute-command', command: script('AAA') }),
        sb.run('conc-b', { action: 'execute-command', command: script('BBB') }),
      ]);
      const ra = cmd(a);
      const rb = cmd(b);
      const expected = (tag: string, t: string) =>
        `${Array.from({ length: 300 }, (_, i) => `${tag}-${i + 1}\n`).join('')}/workspace/${t}\n`;
      expect(ra.stdout.length).toBeLessThanOrEqual(1024 + 40);
      expect(ra.stdout.startsWith(expected('AAA', 'conc-a').slice(0, 1024))).toBe(true);
      expect(rb.stdout.startsWith(expected('BBB', 'conc-b').slice(0, 1024))).toBe(true);
      expect(ra.stderr).not.toContain('BBB');
      expect(rb.stderr).not.toContain('AAA');
    });

    it('keeps many small concurrent commands apart', async () => {
      const outcomes = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          sb.run(`many-${i % 3}`, { action: 'execute-command', command: `echo id-${i}; echo err-${i} >&2; exit ${i}` }),
        ),
      );
      for (const [i, o] of outcomes.entries()) {
        expect(cmd(o)).toMatchObject({ stdout: `id-${i}\n`, stderr: `err-${i}\n`, exitCode: i });
      }
    });

    it('aborts through the signal and kills the process group', async () => {
      const ac = new AbortController();
      const running = sb.run(
        task,
        { action: 'execute-command', command: 'sleep 1004 & sleep 1005' },
        { signal: ac.signal },
      );
      await waitFor(async () => (await processesMatching(env.workerId, 'sleep 100[45]')).length === 2);
      ac.abort();
      await expect(running).rejects.toBeInstanceOf(SandboxAbortedError);
      await waitFor(async () => (await processesMatching(env.workerId, 'sleep 100[45]')).length === 0);
    });

    it('cancelTask kills the running commands of that task only', async () => {
      const victim = sb.run('cancel-me', { action: 'execute-command', command: 'sleep 1006' });
      const other = sb.run('keep-me', {
        action: 'execute-command',
        command: 'sleep 2; echo survived',
        timeoutMs: 30_000,
      });
      await waitFor(async () => (await processesMatching(env.workerId, 'sleep 1006')).length === 1);
      await sb.cancelTask('cancel-me');
      const r = cmd(await victim);
      expect(r.exitCode).not.toBe(0);
      expect(r.timedOut).toBe(false);
      expect(cmd(await other)).toMatchObject({ exitCode: 0, stdout: 'survived\n' });
    });

    it('has no network but loopback', async () => {
      const r = await runCommand(sb, task, 'ls /sys/class/net');
      expect(r.stdout.split('\n').filter(Boolean)).toEqual(['lo']);
    });
  });

  describe('path safety', () => {
    it.each([
      ['read-file', '../x'],
      ['read-file', '/etc/passwd'],
      ['read-file', `/workspace/other-task/x`],
      ['read-file', 'a/../../x'],
      ['create-file', '../escape.txt'],
      ['create-file', '/tmp/escape.txt'],
      ['list-files', '..'],
      ['list-files', '/'],
    ] as const)('%s %j is refused', async (action, p) => {
      const o =
        action === 'create-file'
          ? await sb.run(task, { action, filePath: p, content: 'x' })
          : action === 'read-file'
            ? await sb.run(task, { action, filePath: p })
            : await sb.run(task, { action, path: p });
      expect(refusedCode(o)).toBe('path_outside_workspace');
      expect(o.ok ? '' : o.error.message).toContain(p);
    });

    it('refuses cwd outside the task directory', async () => {
      expect(refusedCode(await sb.run(task, { action: 'execute-command', command: 'pwd', cwd: '../..' }))).toBe(
        'path_outside_workspace',
      );
    });

    it('refuses a symlink made by a command that points outside', async () => {
      const t = `${task}-links`;
      await runCommand(
        sb,
        t,
        'ln -s /etc/passwd leak && ln -s /etc etc && ln -s ../other-task sib && mkdir -p real && ln -s real inner',
      );
      for (const p of ['leak', 'etc/hostname', 'sib/x']) {
        expect(refusedCode(await sb.run(t, { action: 'read-file', filePath: p }))).toBe('path_outside_workspace');
      }
      expect(refusedCode(await sb.run(t, { action: 'create-file', filePath: 'etc/evil.conf', content: 'x' }))).toBe(
        'path_outside_workspace',
      );
      expect(
        refusedCode(await sb.run(t, { action: 'create-file', filePath: 'etc/new/dir/evil.conf', content: 'x' })),
      ).toBe('path_outside_workspace');
      expect(refusedCode(await sb.run(t, { action: 'create-file', filePath: 'leak', content: 'x' }))).toBe(
        'path_outside_workspace',
      );
      expect(refusedCode(await sb.run(t, { action: 'list-files', path: 'etc' }))).toBe('path_outside_workspace');
      expect(refusedCode(await sb.run(t, { action: 'execute-command', command: 'pwd', cwd: 'etc' }))).toBe(
        'path_outside_workspace',
      );
      // A symlink that stays inside is fine.
      expect((await sb.run(t, { action: 'create-file', filePath: 'inner/ok.txt', content: 'fine' })).ok).toBe(true);
      const r = await sb.run(t, { action: 'read-file', filePath: 'real/ok.txt' });
      expect(r.ok && r.result).toMatchObject({ content: 'fine' });
    });

    it('refuses a task directory replaced by a symlink', async () => {
      const t = `${task}-swapped`;
      // No task can replace another's directory any more (/workspace is the runner's): as root.
      await rootExec(env.workerId, `rm -rf /workspace/${t} && ln -s /etc /workspace/${t}`);
      expect(refusedCode(await sb.run(t, { action: 'read-file', filePath: 'hostname' }))).toBe(
        'path_outside_workspace',
      );
    });
  });

  describe('bad input', () => {
    it('resolves invalid actions as invalid_action', async () => {
      // @ts-expect-error -- the model can send anything
      expect(refusedCode(await sb.run(task, { action: 'delete-everything' }))).toBe('invalid_action');
      // @ts-expect-error -- missing content
      expect(refusedCode(await sb.run(task, { action: 'create-file', filePath: 'x' }))).toBe('invalid_action');
      expect(refusedCode(await sb.run(task, { action: 'execute-command', command: '' }))).toBe('invalid_action');
    });

    it('refuses the web actions, which run in the worker under the egress policy', async () => {
      const outcome = await sb.run(task, { action: 'web-fetch', url: 'https://example.org/' });
      expect(outcome).toEqual({
        ok: false,
        error: { code: 'invalid_action', message: 'web-fetch does not run in the sandbox' },
      });
      expect(refusedCode(await sb.run(task, { action: 'web-search', query: 'q' }))).toBe('invalid_action');
    });

    it('throws for a bad task id (a caller bug, not retryable)', async () => {
      await expect(sb.run('../etc', { action: 'list-files' })).rejects.toBeInstanceOf(InvalidTaskIdError);
    });
  });

  describe('exportFiles and cleanupExpired', () => {
    it('exports regular files within the byte budget, skipping symlinks', async () => {
      const t = `${task}-export`;
      await sb.run(t, { action: 'create-file', filePath: 'a.txt', content: '0123456789' });
      await sb.run(t, { action: 'create-file', filePath: 'sub/b.txt', content: 'x'.repeat(20) });
      await sb.run(t, { action: 'create-file', filePath: 'z-big.txt', content: 'y'.repeat(100) });
      await runCommand(sb, t, 'ln -s /etc/passwd pw; ln -s a.txt alias');
      const out = await sb.exportFiles(t, { maxBytes: 40 });
      expect(out.truncated).toBe(true);
      expect(out.files.map((f) => [f.path, f.size, f.content?.toString()])).toEqual([
        ['a.txt', 10, '0123456789'],
        ['sub/b.txt', 20, 'x'.repeat(20)],
        ['z-big.txt', 100, undefined],
      ]);
      const none = await sb.exportFiles(`${task}-never-used`, { maxBytes: 40 });
      expect(none).toEqual({ files: [], truncated: false });
    });

    it('deletes only expired task workspaces', async () => {
      await sb.run(`${task}-old`, { action: 'create-file', filePath: 'f.txt', content: 'old' });
      await sb.run(`${task}-new`, { action: 'create-file', filePath: 'f.txt', content: 'new' });
      // Another task cannot touch it any more: as root.
      await rootExec(env.workerId, `touch -d '3 days ago' /workspace/${task}-old`);
      const removed = await sb.cleanupExpired(24 * 3_600_000);
      expect(removed).toBe(1);
      const ls = await runCommand(sb, 'toucher', 'ls /workspace');
      expect(ls.stdout.split('\n')).toContain(`${task}-new`);
      expect(ls.stdout.split('\n')).not.toContain(`${task}-old`);
    });

    it("removes a deleted task's workspace whatever its age, and what still runs as the task", async () => {
      const t = `${task}-deleted`;
      await sb.run(t, { action: 'create-file', filePath: 'sub/f.txt', content: 'gone' });
      await runCommand(sb, t, 'nohup sleep 301 >/dev/null 2>&1 &');
      await sb.run(`${task}-kept`, { action: 'create-file', filePath: 'f.txt', content: 'kept' });
      expect(await sb.removeWorkspace(t)).toBe(true);
      expect(await sb.removeWorkspace(t)).toBe(false);
      const dirs = (await rootExec(env.workerId, 'ls /workspace')).split('\n');
      expect(dirs).not.toContain(t);
      expect(dirs).toContain(`${task}-kept`);
      const running = await rootExec(env.workerId, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '");
      expect(running).not.toContain('sleep 301');
      // The id can be used again from nothing.
      const again = await sb.run(t, { action: 'list-files' });
      expect(again).toMatchObject({ ok: true, result: { files: [] } });
    });
  });

  it('is labelled and hardened as the design says', async () => {
    const info = await (await containerOf(env.workerId)).inspect();
    expect(info.Name).toBe(`/research-sandbox-${env.workerId}`);
    expect(info.Config.Labels).toMatchObject({ 'research.sandbox': 'true', 'research.worker': env.workerId });
    const h = info.HostConfig;
    expect(h.NetworkMode).toBe('none');
    expect(h.CapDrop).toEqual(['ALL']);
    expect(h.SecurityOpt).toEqual(['no-new-privileges']);
    expect(h.Init).toBe(true);
    expect(h.Memory).toBe(1024 * 1024 * 1024);
    expect(h.MemorySwap).toBe(h.Memory);
    expect(h.NanoCpus).toBe(1e9);
    expect(h.PidsLimit).toBe(256);
    expect(info.Mounts).toEqual([
      expect.objectContaining({ Type: 'volume', Name: env.volume, Destination: '/workspace' }),
    ]);
  });
});
