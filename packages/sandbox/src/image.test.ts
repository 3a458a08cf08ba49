import { describe, expect, it } from 'vitest';
import { ROOT_ONLY_DOCKERFILE } from '@research/testing';
import {
  attackScript,
  cmd,
  DENIED,
  rootExec,
  runCommand,
  useImage,
  useSandbox,
  VICTIM_COMMAND,
  waitFor,
} from './test-helpers.js';

describe('a root-only image shaped like the production one', () => {
  const tag = useImage('rootonly', ROOT_ONLY_DOCKERFILE);
  const env = useSandbox({ image: tag });
  const sb = env.sandbox;

  it('has what the production image has: only root, python3 only in /usr/local/bin', async () => {
    expect(sb.mode).toBe('runner');
    const r = await rootExec(
      env.workerId,
      'cut -d: -f1,3 /etc/passwd | grep -c ":1[0-9][0-9][0-9]$"; command -v python3',
    );
    expect(r.trim().split('\n')).toEqual(['0', '/usr/local/bin/python3']);
  });

  it("runs each task as its own uid with no capabilities, and keeps tasks out of each other's files, processes and the runner", async () => {
    const caps = await runCommand(sb, 't1', 'id -u; grep -E "^Cap(Prm|Eff|Bnd|Amb)" /proc/self/status');
    const [uid, ...sets] = caps.stdout.trim().split('\n');
    expect(Number(uid)).toBeGreaterThanOrEqual(100_000);
    expect(sets.map((l) => l.split('\t')[1])).toEqual(Array(4).fill('0000000000000000'));

    expect((await sb.run('victim', { action: 'create-file', filePath: 'secret.txt', content: 'A-secret' })).ok).toBe(
      true,
    );
    const victim = sb.run('victim', { action: 'execute-command', command: VICTIM_COMMAND, timeoutMs: 60_000 });
    await waitFor(async () =>
      (await rootExec(env.workerId, 'cat /proc/[0-9]*/cmdline | tr "\\0" " "')).includes('sleep 1029'),
    );
    const attack = await runCommand(sb, 'attacker', attackScript('victim'));
    expect(attack.stdout.trim().split('\n')).toEqual(DENIED);
    await rootExec(env.workerId, 'touch /workspace/victim/release');
    expect(cmd(await victim)).toMatchObject({ exitCode: 0, stdout: 'A-secret' });
  });

  it('keeps the file actions, export and cancel working', async () => {
    expect((await sb.run('files', { action: 'create-file', filePath: 'd/a.txt', content: 'abc' })).ok).toBe(true);
    const read = await sb.run('files', { action: 'read-file', filePath: 'd/a.txt' });
    expect(read.ok && read.result).toMatchObject({ content: 'abc' });
    const list = await sb.run('files', { action: 'list-files' });
    expect(list.ok && list.result.action === 'list-files' && list.result.files.map((f) => f.path)).toEqual([
      'd',
      'd/a.txt',
    ]);
    const out = await sb.exportFiles('files', { maxBytes: 1000 });
    expect(out.files.map((f) => [f.path, f.content?.toString()])).toEqual([['d/a.txt', 'abc']]);
    await runCommand(sb, 'files', 'setsid sleep 1040 >/dev/null 2>&1 < /dev/null & echo bg');
    await sb.cancelTask('files');
    expect(await rootExec(env.workerId, 'cat /proc/[0-9]*/cmdline | tr "\\0" " "')).not.toContain('sleep 1040');
  });
});
