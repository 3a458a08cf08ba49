import Dockerode from 'dockerode';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerSandbox } from './docker-sandbox.js';
import {
  type SandboxError,
  SandboxImageMissingError,
  SandboxNotFoundError,
  SandboxUnavailableError,
} from './errors.js';
import {
  containerOf,
  docker,
  processesMatching,
  removeWorker,
  requireDocker,
  rootExec,
  runCommand,
  uniqueId,
  useSandbox,
  waitFor,
} from './test-helpers.js';

describe('container lifecycle', () => {
  const env = useSandbox({}, { ensure: false });
  const sb = env.sandbox;
  const task = 'life';

  it('creates the container once, even when ensure() is called concurrently', async () => {
    const infos = await Promise.all(Array.from({ length: 5 }, () => sb.ensure()));
    expect(new Set(infos.map((i) => i.containerId)).size).toBe(1);
    expect(infos[0]).toMatchObject({
      name: `research-sandbox-${env.workerId}`,
      image: 'research-sandbox:latest',
      created: true,
      started: true,
    });
    const list = await docker.listContainers({ all: true, filters: { label: [`research.worker=${env.workerId}`] } });
    expect(list).toHaveLength(1);
    const again = await sb.ensure();
    expect(again).toMatchObject({ containerId: infos[0]?.containerId, created: false, started: false });
    expect(sb.restarts).toBe(0);
  });

  it('reuses a running container from an earlier process (a new DockerSandbox)', async () => {
    const other = new DockerSandbox({ workerId: env.workerId, volume: env.volume, docker });
    const info = await other.ensure();
    expect(info).toMatchObject({ created: false, started: false });
    await other.dispose('keep');
  });

  it('re-creates a removed container on the next action; task files survive in the volume', async () => {
    await sb.run(task, { action: 'create-file', filePath: 'kept.txt', content: 'persisted' });
    const before = (await sb.ensure()).containerId;
    await (await containerOf(env.workerId)).remove({ force: true });
    const r = await sb.run(task, { action: 'read-file', filePath: 'kept.txt' });
    expect(r.ok && r.result).toMatchObject({ content: 'persisted' });
    const info = await sb.ensure();
    expect(info.containerId).not.toBe(before);
    expect(sb.restarts).toBe(1);
  });

  it('starts a stopped container on the next action', async () => {
    await (await containerOf(env.workerId)).stop({ t: 0 });
    const r = await runCommand(sb, task, 'cat kept.txt');
    expect(r.stdout).toBe('persisted');
    expect(sb.restarts).toBe(2);
  });

  it('throws a retryable error when the container is killed mid-command, and the next action works', async () => {
    const running = sb.run(task, { action: 'execute-command', command: 'sleep 1007' });
    const settled = running.then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(async () => (await processesMatching(env.workerId, 'sleep 1007')).length === 1);
    await (await containerOf(env.workerId)).kill();
    const err = await settled;
    expect(err).toBeInstanceOf(SandboxNotFoundError);
    expect((err as SandboxError).retryable).toBe(true);
    const r = await runCommand(sb, task, 'echo back');
    expect(r.stdout).toBe('back\n');
    expect(sb.restarts).toBe(3);
  });

  it('restarts the runner when it dies, without restarting the container', async () => {
    const before = (await sb.ensure()).containerId;
    await rootExec(env.workerId, 'pkill -KILL -f /opt/research/runner; true');
    // The runner's death may be noticed by this call or the next; neither fails for the caller:
    // file actions are retried once transparently.
    const r = await sb.run(task, { action: 'read-file', filePath: 'kept.txt' });
    expect(r.ok).toBe(true);
    const c = await runCommand(sb, task, 'echo ok');
    expect(c.stdout).toBe('ok\n');
    expect((await sb.ensure()).containerId).toBe(before);
    expect(sb.restarts).toBe(3);
  });

  it('dispose("stop") stops the container and a later ensure() starts it again', async () => {
    await sb.dispose('stop');
    expect((await (await containerOf(env.workerId)).inspect()).State.Running).toBe(false);
    const info = await sb.ensure();
    expect(info.started).toBe(true);
  });

  it('dispose("remove") removes it', async () => {
    await sb.dispose('remove');
    const list = await docker.listContainers({ all: true, filters: { label: [`research.worker=${env.workerId}`] } });
    expect(list).toHaveLength(0);
  });
});

describe('configuration failures', () => {
  beforeAll(requireDocker);

  it('reports an unreachable engine as SandboxUnavailableError (retryable)', async () => {
    const sb = new DockerSandbox({
      workerId: uniqueId(),
      docker: new Dockerode({ socketPath: '/nonexistent/docker.sock' }),
    });
    const err = await sb.ensure().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxUnavailableError);
    expect((err as SandboxError).retryable).toBe(true);
  });

  it('reports a missing image as SandboxImageMissingError (not retryable)', async () => {
    const workerId = uniqueId();
    const sb = new DockerSandbox({ workerId, volume: `${workerId}-ws`, image: 'research-no-such-image:0', docker });
    const err = await sb.ensure().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxImageMissingError);
    expect((err as SandboxError).retryable).toBe(false);
    await removeWorker(workerId, `${workerId}-ws`);
  });

  it('rejects a worker id that cannot name a container', () => {
    expect(() => new DockerSandbox({ workerId: 'bad id/x' })).toThrow(TypeError);
  });
});
