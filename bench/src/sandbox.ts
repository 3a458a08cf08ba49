import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { DockerSandbox } from '@research/sandbox';

const execFileP = promisify(execFile);

export interface SandboxFigures {
  /** `execute-command "true"` through Sandbox.run and the in-container runner. */
  runnerP50Ms: number;
  runnerP99Ms: number;
  /**
   * `read-file` of a small file through the same runner: the transport and the runner's own
   * work, with no process started — the floor under any command's figure.
   */
  readFileP50Ms: number;
  /** The same command as one per-call dockerode exec (create + attach + inspect): the baseline. */
  execP50Ms: number;
  /** The same command through `docker exec` (child process). */
  cliP50Ms: number;
  /** execP50Ms / runnerP50Ms. */
  speedup: number;
}

/**
 * `execute-command "true"` three ways, in one run, on a container of its own (removed after):
 * through the runner (what workers do), through a fresh dockerode exec per call (what the
 * runner replaces) and through the docker CLI. Every way runs `bash -c true` as the task's own
 * uid in the task directory, so only the transport differs. Target: runner p50 ≤ 2 ms and at
 * least 15× faster than per-call exec.
 */
export async function benchSandbox(opts: { iterations?: number } = {}): Promise<SandboxFigures> {
  const iterations = Math.max(10, opts.iterations ?? 1_000);
  // The baselines cost ~50 ms a call; fewer samples keep the run short and the p50 stable.
  const baselineIterations = Math.max(10, Math.min(iterations, 200));
  const workerId = `bench-${randomBytes(4).toString('hex')}`;
  const volume = `${workerId}-ws`;
  const docker = new Dockerode();
  const sandbox = new DockerSandbox({ workerId, volume, docker });
  const task = 'bench';
  try {
    const info = await sandbox.ensure();
    const container = docker.getContainer(info.containerId);
    const action = { action: 'execute-command', command: 'true' } as const;
    const viaRunner = async () => {
      const outcome = await sandbox.run(task, action);
      if (!outcome.ok || outcome.result.action !== 'execute-command' || outcome.result.exitCode !== 0)
        throw new Error(`runner: unexpected ${JSON.stringify(outcome)}`);
    };
    await viaRunner();
    // The task directory belongs to the task's uid (0700): the baselines run as that uid too.
    const probe = await sandbox.run(task, { action: 'execute-command', command: 'id -u' });
    const uid = probe.ok && probe.result.action === 'execute-command' ? probe.result.stdout.trim() : '';
    const viaExec = async () => {
      const exec = await container.exec({
        Cmd: ['bash', '-c', 'true'],
        User: `${uid}:${uid}`,
        WorkingDir: `/workspace/${task}`,
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.on('end', resolve);
        stream.resume();
      });
      const inspected = await exec.inspect();
      if (inspected.ExitCode !== 0) throw new Error(`exec: exit ${inspected.ExitCode}`);
    };
    const viaCli = async () => {
      await execFileP('docker', [
        'exec',
        '-u',
        `${uid}:${uid}`,
        '-w',
        `/workspace/${task}`,
        info.name,
        'bash',
        '-c',
        'true',
      ]);
    };

    const runner = await sample(viaRunner, iterations, 50);
    await sandbox.run(task, { action: 'create-file', filePath: 'small.txt', content: 'x' });
    const viaReadFile = async () => {
      const outcome = await sandbox.run(task, { action: 'read-file', filePath: 'small.txt' });
      if (!outcome.ok) throw new Error(`read-file: unexpected ${JSON.stringify(outcome)}`);
    };
    const readFile = await sample(viaReadFile, iterations, 50);
    const exec = await sample(viaExec, baselineIterations, 5);
    const cli = await sample(viaCli, baselineIterations, 3);
    const runnerP50Ms = percentile(runner, 50);
    const execP50Ms = percentile(exec, 50);
    return {
      runnerP50Ms: round(runnerP50Ms),
      runnerP99Ms: round(percentile(runner, 99)),
      readFileP50Ms: round(percentile(readFile, 50)),
      execP50Ms: round(execP50Ms),
      cliP50Ms: round(percentile(cli, 50)),
      speedup: round(execP50Ms / runnerP50Ms, 1),
    };
  } finally {
    await sandbox.dispose('remove').catch(() => undefined);
    await docker
      .getVolume(volume)
      .remove()
      .catch(() => undefined);
  }
}

/** Sequential calls; the first `warmup` are not counted. */
async function sample(fn: () => Promise<void>, n: number, warmup: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await fn();
    out.push(performance.now() - started);
  }
  return out;
}

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

function round(value: number, decimals = 3): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}
