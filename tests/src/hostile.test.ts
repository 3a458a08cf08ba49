import os from 'node:os';
import type { TaskView } from '@research/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FakeLlm,
  TrackedSystem,
  commandResult,
  refusal,
  stepOutcomes,
  toolErrors,
  turnOf,
  type TaskEvents,
} from './fakes.js';
import { block, requireServices } from '@research/testing';
import { containerWith, rootExec } from './docker-exec.js';

/**
 * Hostile input through the real API and a real worker with its Docker sandbox: what the model
 * writes, what its commands try inside the container, and what one task tries against another.
 * Every API answer is recorded; none may be a 5xx.
 */

let sys: TrackedSystem;
const workerId = () => `hostile-${sys.id}`;
let inputs = 0;
/** Every system this file starts, for the closing count of API responses. */
const systems: TrackedSystem[] = [];

beforeAll(async () => {
  await requireServices();
  sys = new TrackedSystem();
  systems.push(sys);
  await sys.startApi();
  // A quota above the 10 GiB sparse file made below: each command's RLIMIT_FSIZE is what is left of it.
  await sys.startWorker(workerId(), {
    SANDBOX_COMMAND_TIMEOUT_MS: '20000',
    WORKER_CONCURRENCY: '4',
    SANDBOX_TASK_DISK_MB: '16384',
  });
});

afterAll(async () => {
  const errors = systems.flatMap((s) => s.serverErrors());
  const responses = systems.reduce((n, s) => n + s.statuses.length, 0);
  console.log(`hostile: ${inputs} hostile inputs tried, ${responses} API responses, ${errors.length} 5xx`);
  await sys?.close();
  expect(errors).toEqual([]);
});

/** Submits blocks for the offline model to replay, waits for the end, returns the view and the events. */
async function run(
  blocks: string[],
  request: Record<string, unknown> = {},
): Promise<{ id: string; view: TaskView; events: TaskEvents }> {
  inputs += blocks.length;
  const id = await sys.submit({ prompt: blocks.join('\n\nthen\n\n'), ...request });
  const view = await sys.waitFinal(id);
  const events = await sys.events(id);
  return { id, view, events };
}

const cmd = (command: string, timeoutMs?: number) =>
  block({ action: 'execute-command', command, ...(timeoutMs ? { timeoutMs } : {}) });

describe('hostile model output', () => {
  it('malformed, truncated, unknown and incomplete blocks become tool_error events; valid blocks still run; the task completes', async () => {
    const hostile = [
      '<daytona-execute>\naction=create-file\nfilePath=x.md\n</daytona-execute>', // unquoted values
      // Written out: the kit's block() renders catalog actions only.
      '<daytona-execute>\naction="format-disk"\ntarget="/"\n</daytona-execute>', // unknown action
      block({ action: 'create-file', filePath: 'no-content.md' }), // missing parameter
      block({ action: 'execute-command' }), // missing parameter
      block({ action: 'read-file', filePath: 'a', filepath: 'b' }), // unknown parameter
      '<daytona-execute>\naction="list-files"\naction="list-files"\n</daytona-execute>', // duplicated parameter
      '<daytona-execute>\n__proto__="x"\nconstructor="y"\n</daytona-execute>', // prototype keys
      '<daytona-execute action="execute-command" command="echo attr" timeoutMs="soon"/>', // wrong type
      '<daytona-execute action="list-files" path=>\n</daytona-execute>', // attribute without a value
      block({ action: 'execute-command', command: 'echo still-alive' }), // a valid one in the middle
      '<daytona-execute>\naction="create-file"\nfilePath="cut.md"\ncontent="this block is cut off mid-value', // truncated
    ];
    const { view, events } = await run(hostile);
    expect(view.status).toBe('completed');
    const errors = toolErrors(events);
    // One error per block but the valid one.
    expect(errors.length).toBe(hostile.length - 1);
    expect(errors.join('\n')).toMatch(/format-disk|action/);
    expect(errors.join('\n')).toMatch(/not terminated|not closed/);
    const outcomes = stepOutcomes(events);
    expect(outcomes).toHaveLength(1);
    expect(commandResult(outcomes[0]).stdout.trim()).toBe('still-alive');
    // Nothing the malformed blocks named was created.
    const files = (await (await sys.request(`/v1/jobs/${view.id}/files`)).json()) as { files: { path: string }[] };
    expect(files.files.map((f) => f.path)).toEqual([]);
  });

  it('a prompt near the size limit made of one enormous block runs, and a longer one is refused with 413/400', async () => {
    const content = 'A'.repeat(95_000);
    const { view } = await run([block({ action: 'create-file', filePath: 'big.txt', content })]);
    expect(view.status).toBe('completed');
    expect(view.result?.files).toEqual([{ path: 'big.txt', size: 95_000 }]);
    const res = await sys.request('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify({ prompt: block({ action: 'create-file', filePath: 'x', content: 'A'.repeat(1_000_000) }) }),
    });
    inputs += 1;
    expect([400, 413]).toContain(res.status);
  });
});

describe('hostile model output from a model endpoint', () => {
  let llm: FakeLlm;
  let modelSys: TrackedSystem;
  const MB = 1024 * 1024;

  beforeAll(async () => {
    // A model endpoint on loopback whose answers no prompt could carry: 1 MB blocks.
    llm = await new FakeLlm((req) => {
      const { prompt, turn } = turnOf(req);
      const script: Record<string, string[]> = {
        enormous: [block({ action: 'create-file', filePath: 'huge.txt', content: 'x'.repeat(MB) })],
        'enormous-truncated': [`<daytona-execute>\naction="create-file"\nfilePath="t.txt"\ncontent="${'y'.repeat(MB)}`],
        'enormous-command': [block({ action: 'execute-command', command: `echo ${'z'.repeat(200_000)}` })],
        'enormous-prose': [`${'blah '.repeat(MB / 5)}`],
        'many-blocks': [
          Array.from({ length: 300 }, (_, i) => block({ action: 'execute-command', command: `echo ${i}` })).join('\n'),
        ],
      };
      const turns = script[prompt] ?? [];
      return { text: turns[turn] ?? 'Done.' };
    }).start();
    modelSys = new TrackedSystem();
    systems.push(modelSys);
    await modelSys.startApi();
    await modelSys.startWorker(`hostile-llm-${modelSys.id}`, llm.workerEnv());
  });

  afterAll(async () => {
    const errors = modelSys?.serverErrors() ?? [];
    await modelSys?.close();
    await llm?.close();
    expect(errors).toEqual([]);
  });

  it('a 1 MB create-file is written; a 1 MB unterminated block and a 200 kB command are refused; 1 MB of prose is an answer; 300 blocks hit the step budget', async () => {
    const runOne = async (prompt: string, extra: Record<string, unknown> = {}) => {
      inputs += 1;
      const id = await modelSys.submit({ prompt, ...extra });
      const view = await modelSys.waitFinal(id);
      return { view, events: await modelSys.events(id) };
    };

    const enormous = await runOne('enormous');
    expect(enormous.view.status).toBe('completed');
    expect(enormous.view.result?.files).toEqual([{ path: 'huge.txt', size: MB }]);
    const huge = await modelSys.request(`/v1/jobs/${enormous.view.id}/files/huge.txt`);
    expect(huge.status).toBe(200);
    expect((await huge.text()).length).toBe(MB);

    const truncated = await runOne('enormous-truncated');
    expect(truncated.view.status).toBe('completed');
    expect(toolErrors(truncated.events).join('\n')).toMatch(/not terminated|not closed/);
    expect(stepOutcomes(truncated.events)).toEqual([]);

    const command = await runOne('enormous-command');
    expect(command.view.status).toBe('completed');
    expect(toolErrors(command.events).join('\n')).toMatch(/longer than 100000/);

    const prose = await runOne('enormous-prose');
    expect(prose.view.status).toBe('completed');
    expect(prose.view.result?.summary.length).toBeGreaterThan(MB / 2);

    const many = await runOne('many-blocks', { maxSteps: 20 });
    expect(many.view.status).toBe('failed');
    expect(many.view.error?.code).toBe('max_steps');
    expect(stepOutcomes(many.events)).toHaveLength(20);
  });
});

describe('sandbox attacks', () => {
  it('path traversal through every action is refused with path_outside_workspace', async () => {
    const other = await sys.submit({
      prompt: block({ action: 'create-file', filePath: 'secret.md', content: 'secret of the other task' }),
    });
    await sys.waitFinal(other);
    const targets = [
      '../x',
      '../../etc/passwd',
      '/etc/passwd',
      `/workspace/${other}/secret.md`,
      `../${other}/secret.md`,
      'a/../../x',
      '/workspace',
      '/',
    ];
    const attacks = targets.flatMap((p) => [
      block({ action: 'create-file', filePath: p, content: 'pwned' }),
      block({ action: 'read-file', filePath: p }),
      block({ action: 'list-files', path: p }),
      block({ action: 'execute-command', command: 'pwd', cwd: p }),
    ]);
    const { view, events } = await run(attacks);
    expect(view.status).toBe('completed');
    const outcomes = stepOutcomes(events);
    expect(outcomes).toHaveLength(attacks.length);
    for (const o of outcomes) expect(refusal(o)).toBe('path_outside_workspace');
    // The other task's file is untouched.
    expect(await (await sys.request(`/v1/jobs/${other}/files/secret.md`)).text()).toBe('secret of the other task');
  });

  it('a symlink made by a command is not followed by any action and not served through the API', async () => {
    const other = await sys.submit({
      prompt: block({ action: 'create-file', filePath: 'secret.md', content: 'secret of the other task' }),
    });
    await sys.waitFinal(other);
    const { id, view, events } = await run([
      cmd(
        `ln -s /etc/passwd leak && ln -s /workspace/${other} sibling && ln -s / root && ln -s /tmp outdir && echo linked`,
      ),
      block({ action: 'read-file', filePath: 'leak' }),
      block({ action: 'read-file', filePath: 'sibling/secret.md' }),
      block({ action: 'list-files', path: 'root' }),
      block({ action: 'list-files', path: 'sibling' }),
      block({ action: 'create-file', filePath: 'leak', content: 'overwrite through the link' }),
      block({ action: 'create-file', filePath: 'outdir/planted', content: 'planted' }),
      block({ action: 'execute-command', command: 'pwd', cwd: 'root' }),
      block({ action: 'list-files' }),
    ]);
    expect(view.status).toBe('completed');
    const o = stepOutcomes(events);
    expect(commandResult(o[0]).stdout.trim()).toBe('linked');
    for (const i of [1, 2, 3, 4, 5, 6, 7]) expect(refusal(o[i])).toBe('path_outside_workspace');
    // list-files shows the links as links, never their targets' contents.
    const listing = o[8]!.ok && o[8]!.result.action === 'list-files' ? o[8]!.result.files : [];
    expect(listing.filter((f) => ['leak', 'sibling', 'root', 'outdir'].includes(f.path)).map((f) => f.type)).toEqual([
      'symlink',
      'symlink',
      'symlink',
      'symlink',
    ]);
    expect(listing.some((f) => f.path.startsWith('sibling/') || f.path.startsWith('root/'))).toBe(false);

    // Through the API: the links are not task files, and nothing behind them is served.
    for (const p of ['leak', 'sibling/secret.md', 'root/etc/passwd', 'outdir/planted']) {
      const res = await sys.rawGet(`/v1/jobs/${id}/files/${p}`);
      expect(res.status).toBe(404);
      expect(res.body).not.toMatch(/root:x:0:0|secret of the other task/);
    }
    const list = (await (await sys.request(`/v1/jobs/${id}/files`)).json()) as { files: { path: string }[] };
    expect(list.files).toEqual([]);
  });

  it('cannot write outside /workspace, runs unprivileged, and cannot see the host', async () => {
    const { view, events } = await run([
      cmd('echo x > /etc/x'),
      cmd('touch /x'),
      cmd('id -u; id -un'),
      cmd("tr '\\0' ' ' < /proc/1/cmdline"),
      cmd('hostname'),
      cmd('ls /proc | grep -c "^[0-9]"'),
      cmd('cat /proc/self/status | grep -i ^CapEff'),
      cmd('sudo -n true; su -c true root < /dev/null'),
      cmd('mount -t tmpfs none /mnt'),
      cmd('ls /var/run/docker.sock /run/docker.sock'),
    ]);
    expect(view.status).toBe('completed');
    const r = stepOutcomes(events).map(commandResult);
    expect(r[0]!.exitCode).not.toBe(0);
    expect(r[0]!.stderr).toMatch(/Permission denied|Read-only/);
    expect(r[1]!.exitCode).not.toBe(0);
    expect(r[2]!.stdout.split('\n')[0]).not.toBe('0');
    // PID 1 is the container's init running our keep-alive, not the host's init.
    expect(r[3]!.stdout).toMatch(/sleep/);
    expect(r[3]!.stdout).not.toMatch(/systemd/);
    expect(r[4]!.stdout.trim()).not.toBe(os.hostname());
    // Only the container's own processes are visible (a handful, not the host's hundreds).
    expect(Number(r[5]!.stdout.trim())).toBeLessThan(64);
    expect(r[6]!.stdout).toMatch(/CapEff:\s*0+\s*$/);
    expect(r[7]!.exitCode).not.toBe(0);
    expect(r[8]!.exitCode).not.toBe(0);
    expect(r[9]!.exitCode).not.toBe(0);
  });

  it('has no network but loopback', async () => {
    const { view, events } = await run([
      cmd('ls /sys/class/net'),
      // No route exists, so nothing is sent: the connect fails at once.
      cmd(`python3 -c "import socket; s = socket.socket(); s.settimeout(2); s.connect(('1.1.1.1', 53))"`),
    ]);
    expect(view.status).toBe('completed');
    const r = stepOutcomes(events).map(commandResult);
    expect(r[0]!.stdout.trim().split('\n')).toEqual(['lo']);
    expect(r[1]!.exitCode).not.toBe(0);
    expect(r[1]!.stderr).toMatch(/unreachable|timed out|OSError|Errno/i);
  });

  it('fork bombs are held by the pids limit and killed with their task, even one that left its process group; the worker stays usable', async () => {
    // The classic form returns at once and leaves the bomb running in the background (a command's
    // background processes live until its task ends); the second form waits in it until its timeout.
    // A third one leaves its process group (setsid), out of reach of the task's own cleanup.
    const { view, events } = await run([
      cmd(':(){ :|:& };:', 4_000),
      cmd(':(){ :|:& };:; sleep 5', 4_000),
      cmd("setsid bash -c ':(){ :|:& };:' >/dev/null 2>&1 </dev/null & echo escaped", 4_000),
    ]);
    expect(view.status).toBe('completed');
    const o = stepOutcomes(events);
    expect(o).toHaveLength(3);
    // The second bomb timed out or could not get a process; either way it came back. Later steps
    // of the same task may be refused with resource_exhausted while its bomb runs.
    if (o[1]!.ok) expect(commandResult(o[1]).exitCode).not.toBe(0);
    else expect(refusal(o[1])).toBe('resource_exhausted');
    if (!o[2]!.ok) expect(refusal(o[2])).toBe('resource_exhausted');
    const next = await run([cmd("echo usable; ls /proc | grep -c '^[0-9]'")]);
    expect(next.view.status).toBe('completed');
    const r = commandResult(stepOutcomes(next.events)[0]);
    expect(r.stdout).toMatch(/usable/);
    // Nothing of the bombs outlived their task.
    expect(Number(r.stdout.trim().split('\n')[1])).toBeLessThan(32);
  });

  it('a memory hog is killed with a non-zero exit; the container stays usable', async () => {
    const { view, events } = await run([
      cmd(`python3 -c "x = b'a' * (4 * 1024 ** 3); print(len(x))"`, 60_000),
      cmd('echo after-hog'),
    ]);
    expect(view.status).toBe('completed');
    const o = stepOutcomes(events).map(commandResult);
    // The kernel's OOM killer takes the hog (SIGKILL: 128 + 9), not the runner or the container.
    expect(o[0]!.exitCode).toBe(137);
    expect(o[0]!.stderr).toMatch(/Killed/);
    expect(o[0]!.stdout).not.toMatch(/4294967296/);
    expect(o[1]!.stdout.trim()).toBe('after-hog');
  });

  it('odd file names and special files: listed and served or refused, never a 5xx', async () => {
    const deep = "$(printf 'd/%.0s' $(seq 1 300))";
    const { id, view, events } = await run([
      cmd(
        `touch $'a\\nb' $'\\xff\\xfe.txt' 'sp ace.md' '%2e%2e' '..%2f' && mkfifo pipe && truncate -s 10G sparse.bin && mkdir -p ${deep} && echo deep > ${deep}deep.txt && for i in $(seq 1 3000); do : > many$i; done; ls | wc -l`,
      ),
      block({ action: 'read-file', filePath: 'pipe' }),
      block({ action: 'read-file', filePath: 'sparse.bin' }),
      block({ action: 'list-files' }),
    ]);
    expect(view.status).toBe('completed');
    const o = stepOutcomes(events);
    expect(commandResult(o[0]).stdout.trim()).toBe('3008');
    expect(refusal(o[1])).toBe('not_a_file');
    expect(o[2]!.ok && o[2]!.result.action === 'read-file' && o[2]!.result.truncated).toBe(true);
    expect(o[3]!.ok && o[3]!.result.action === 'list-files' && o[3]!.result.truncated).toBe(true);
    const list = await sys.request(`/v1/jobs/${id}/files`);
    expect(list.status).toBe(200);
    const files = ((await list.json()) as { files: { path: string; size: number }[] }).files;
    expect(files.length).toBe(3007); // every regular file, the deep one included; not the FIFO
    expect(files.find((f) => f.path === 'sparse.bin')?.size).toBe(10 * 1024 ** 3);
    // A name that is not UTF-8 (\xff\xfe) comes back with lone surrogates no URL can carry; it is listed only.
    const nameable = (p: string) => !/[\uD800-\uDFFF]/.test(p);
    for (const f of files.filter((f) => !f.path.startsWith('many') && nameable(f.path))) {
      inputs += 1;
      const res = await sys.request(`/v1/jobs/${id}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`);
      const expected = f.path === 'sparse.bin' ? 404 : /%2e%2e|%2f/i.test(f.path) ? 400 : 200;
      expect(res.status, f.path.slice(0, 60)).toBe(expected);
    }
  });

  it("a task's time budget also stops the command it is running", async () => {
    const { view, events } = await run([cmd('sleep 600'), cmd('echo never')], { timeoutSeconds: 2 });
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('timeout');
    const o = stepOutcomes(events).map(commandResult);
    // Killed for the task's budget, not ended by the much longer command timeout.
    expect(o).toHaveLength(1);
    expect(o[0]!.timedOut).toBe(false);
    expect(o[0]!.exitCode).not.toBe(0);
    expect(o[0]!.stderr).toMatch(/command cancelled/);
  });

  it('output floods are cut with a marker; SIGTERM-ignoring and stdout-closing commands come back at their timeout', async () => {
    const { view, events } = await run([
      cmd('yes | head -c 50M'),
      cmd('yes err | head -c 20M >&2'),
      cmd('yes flood', 2_000),
      cmd("trap '' TERM; sleep 30", 1_500),
      cmd('exec >&-; sleep 30', 2_000),
      cmd('exec >&- 2>&-; sleep 30', 2_000),
      cmd('sleep 30 & echo started-in-background'),
      cmd('echo done'),
    ]);
    expect(view.status).toBe('completed');
    const r = stepOutcomes(events).map(commandResult);
    expect(r[0]!.truncated).toBe(true);
    expect(r[0]!.stdout).toMatch(/output truncated at \d+ bytes/);
    expect(r[0]!.stdout.length).toBeLessThan(1024 * 1024);
    expect(r[1]!.truncated).toBe(true);
    expect(r[1]!.stderr.length).toBeLessThan(1024 * 1024);
    // Endless output: cut at the cap, stopped at the timeout.
    expect(r[2]!.timedOut && r[2]!.truncated).toBe(true);
    expect(r[3]!.timedOut).toBe(true);
    expect(r[4]!.timedOut).toBe(true);
    expect(r[5]!.timedOut).toBe(true);
    expect(r[6]!.stdout.trim()).toBe('started-in-background');
    expect(r[6]!.timedOut).toBe(false);
    expect(r[7]!.stdout.trim()).toBe('done');
  });

  it('what a task left running is killed before its files are kept: the kept copy is what its directory holds after its end', async () => {
    const { id, view } = await run([
      cmd(
        '(n=0; while true; do n=$((n+1)); echo $n > beat; done) >/dev/null 2>&1 & sleep 3013 & sleep 0.2; echo started',
      ),
      cmd('echo done'),
    ]);
    expect(view.status).toBe('completed');
    const box = await containerWith(`research.worker=${workerId()}`);
    expect(await rootExec(box, 'ps -eo args')).not.toMatch(/^sleep 3013/m);
    // The writer rewrote `beat` without a pause until it was killed: had the copy been taken
    // before the kill, the directory would hold a later count than the copy.
    const kept = await (await sys.request(`/v1/jobs/${id}/files/beat`)).text();
    expect(kept).toMatch(/^\d*\n?$/);
    expect(await rootExec(box, `cat /workspace/${id}/beat`)).toBe(kept);
  });
});

describe('between tasks', () => {
  it("task B cannot read task A's files through the API or through its own actions", async () => {
    const a = await run([block({ action: 'create-file', filePath: 'report.md', content: 'A-only secret' })]);
    expect(a.view.status).toBe('completed');
    const A = a.id;
    const b = await run([
      block({ action: 'read-file', filePath: `/workspace/${A}/report.md` }),
      block({ action: 'read-file', filePath: `../${A}/report.md` }),
      block({ action: 'list-files', path: `/workspace/${A}` }),
      block({ action: 'create-file', filePath: `/workspace/${A}/report.md`, content: 'B was here' }),
    ]);
    expect(b.view.status).toBe('completed');
    for (const o of stepOutcomes(b.events)) expect(refusal(o)).toBe('path_outside_workspace');
    const B = b.id;

    const probes = [
      `/v1/jobs/${B}/files/../${A}/report.md`,
      `/v1/jobs/${B}/files/..%2F${A}%2Freport.md`,
      `/v1/jobs/${B}/files/%2e%2e/${A}/report.md`,
      `/v1/jobs/${B}/files/%2E%2E%2F${A}%2Freport.md`,
      `/v1/jobs/${B}/files/%252e%252e%252f${A}%252freport.md`,
      `/v1/jobs/${B}/files/%25252e%25252e/${A}/report.md`,
      `/v1/jobs/${B}/files/..%5c${A}%5creport.md`,
      `/v1/jobs/${B}/files/....//${A}/report.md`,
      `/v1/jobs/${B}/files/%2Fworkspace%2F${A}%2Freport.md`,
      `/v1/jobs/${B}/files//workspace/${A}/report.md`,
      `/v1/jobs/${B}/files/%00../${A}/report.md`,
      `/v1/jobs/${B}/files/..%c0%af${A}/report.md`,
      `/v1/jobs/${B}/files/.%2e/${A}/report.md`,
      `/v1/jobs/${B}/files/report.md/../../${A}/report.md`,
      `/v1/jobs/${B}/../${A}/files/report.md`,
      `/v1/jobs/${B}%2F..%2F${A}/files/report.md`,
    ];
    inputs += probes.length;
    for (const p of probes) {
      const res = await sys.rawGet(p);
      expect(res.status, p).toBeGreaterThanOrEqual(400);
      expect(res.status, p).toBeLessThan(500);
      expect(res.body, p).not.toContain('A-only secret');
    }
    // A's own route still serves it (the API has no per-task owner; keys are per deployment).
    expect(await (await sys.request(`/v1/jobs/${A}/files/report.md`)).text()).toBe('A-only secret');
  });
});
