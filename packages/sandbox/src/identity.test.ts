import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSandbox } from './docker-sandbox.js';
import {
  attackScript,
  cmd,
  DENIED,
  docker,
  NO_CAPABILITIES,
  removeWorker,
  requireDocker,
  rootExec,
  runCommand,
  testSandbox,
  uniqueId,
  useSandbox,
  VICTIM_COMMAND,
  waitFor,
} from './test-helpers.js';

describe('a task is its own identity in the shared container', () => {
  const env = useSandbox({}, { mode: 'runner' });
  const sb = env.sandbox;

  it("cannot read or replace another task's files, signal its processes, open its or the runner's /proc entries, or forge the runner's replies", async () => {
    expect((await sb.run('victim', { action: 'create-file', filePath: 'secret.txt', content: 'A-secret' })).ok).toBe(
      true,
    );
    const victim = sb.run('victim', { action: 'execute-command', command: VICTIM_COMMAND, timeoutMs: 60_000 });
    await waitFor(async () => (await rootExec(env.workerId, 'ps -eo args')).includes('sleep 1029'));
    const attack = await runCommand(sb, 'attacker', attackScript('victim'));
    expect(attack.stdout.trim().split('\n')).toEqual(DENIED);
    await rootExec(env.workerId, 'touch /workspace/victim/release');
    expect(cmd(await victim)).toMatchObject({ exitCode: 0, stdout: 'A-secret' });
    const read = await sb.run('victim', { action: 'read-file', filePath: 'secret.txt' });
    expect(read.ok && read.result).toMatchObject({ content: 'A-secret' });
  });

  it('gives a command no capability in any set, under no-new-privileges; the runner keeps four, its shell starter two', async () => {
    const r = await runCommand(sb, 'caps', 'grep -E "^(Cap|NoNewPrivs)" /proc/self/status');
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(NO_CAPABILITIES);
    const status = async (comm: string) => {
      const out = await rootExec(
        env.workerId,
        `p=$(pgrep -u 99999 -x ${comm}); echo "n=$(echo $p | wc -w)"; grep -E "^(Uid|Cap(Eff|Prm|Bnd|Amb))" /proc/$p/status`,
      );
      return out.replace(/\t/g, ' ').split('\n').filter(Boolean);
    };
    // CHOWN, KILL, SETGID, SETUID = bits 0, 5, 6, 7; nothing in the bounding set.
    expect(await status('python3')).toEqual([
      'n=1',
      'Uid: 99999 99999 99999 99999',
      'CapPrm: 00000000000000e1',
      'CapEff: 00000000000000e1',
      'CapBnd: 0000000000000000',
      'CapAmb: 0000000000000000',
    ]);
    // The shell starter (a fork of the runner): SETGID and SETUID only.
    expect(await status('research-shells')).toEqual([
      'n=1',
      'Uid: 99999 99999 99999 99999',
      'CapPrm: 00000000000000c0',
      'CapEff: 00000000000000c0',
      'CapBnd: 0000000000000000',
      'CapAmb: 0000000000000000',
    ]);
  });

  it('makes task directories 0700, owned by a uid of their own; a task cannot open its directory to others', async () => {
    await runCommand(sb, 'opener', 'chmod 777 .');
    await runCommand(sb, 'opener', 'true');
    const modes = await rootExec(
      env.workerId,
      'stat -c "%a %u %n" /workspace/opener /workspace/victim /workspace/caps',
    );
    const rows = modes
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    expect(rows.map((r) => r[0])).toEqual(['700', '700', '700']);
    expect(new Set(rows.map((r) => r[1])).size).toBe(3);
  });

  it('adopts a task directory an older version left to another uid', async () => {
    await rootExec(
      env.workerId,
      'mkdir -p /workspace/legacy/sub && echo old > /workspace/legacy/sub/f && chmod 700 /workspace/legacy/sub && chown -R 1000:1000 /workspace/legacy',
    );
    const r = await runCommand(sb, 'legacy', 'cat sub/f; id -u; stat -c %u sub/f');
    const [content, uid, owner] = r.stdout.trim().split('\n');
    expect(content).toBe('old');
    expect(Number(uid)).toBeGreaterThanOrEqual(100_000);
    expect(owner).toBe(uid);
  });
});

describe('task uids on a volume shared by several containers', () => {
  const volume = `${uniqueId('shared')}-ws`;
  const one = testSandbox({ volume });
  const two = testSandbox({ volume });
  const uidOf = async (sb: DockerSandbox, task: string) => Number((await runCommand(sb, task, 'id -u')).stdout.trim());

  beforeAll(async () => {
    await requireDocker();
    await Promise.all([one.sandbox.ensure(), two.sandbox.ensure()]);
  });
  afterAll(async () => {
    await one.cleanup();
    await two.cleanup();
    await removeWorker(uniqueId(), volume);
  });

  it('hands out distinct uids from two containers at once, and a task keeps its uid in both and across runner restarts', async () => {
    const tasks = Array.from({ length: 24 }, (_, i) => `shared-${i}`);
    const uids = await Promise.all(tasks.map((t, i) => uidOf(i % 2 ? one.sandbox : two.sandbox, t)));
    expect(new Set(uids).size).toBe(tasks.length);
    const seen = await Promise.all(tasks.map((t, i) => uidOf(i % 2 ? two.sandbox : one.sandbox, t)));
    expect(seen).toEqual(uids);
    await rootExec(one.workerId, 'pkill -KILL -f opt/research/runner; true');
    const fresh = new DockerSandbox({ workerId: one.workerId, volume, docker });
    try {
      expect(await uidOf(fresh, tasks[0]!)).toBe(uids[0]);
    } finally {
      await fresh.dispose('keep');
    }
    // The claims agree with the directories' owners.
    const claims = await rootExec(
      one.workerId,
      'cd /workspace/.research/uids && for c in *; do echo "$c $(readlink $c)"; done',
    );
    const byTask = new Map(
      claims
        .trim()
        .split('\n')
        .map((l) => l.split(' ').reverse() as [string, string]),
    );
    for (const [i, t] of tasks.entries()) expect(Number(byTask.get(t))).toBe(uids[i]);
  });
});
