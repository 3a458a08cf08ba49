/**
 * `research gc` against the real Redis and Docker engine: a live worker process keeps everything,
 * a dead worker's container and a dead pool's unused slot go, a slot whose task is not over stays,
 * and objects of another deployment or without our labels are never touched.
 */
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSandbox, TaskSandboxPool } from '@research/sandbox';
import { System, requireServices } from '@research/testing';
import { EXIT } from './args.js';
import { cli } from '../test/api.js';

const docker = new Dockerode();
let sys: System;
let live: string;
let dead: string;
let deadPool: string;
let other: string;
const otherPrefix = `{gcother-${process.pid}}`;
const otherVolume = `research-gcother-${process.pid}`;
const plainVolume = `research-gcplain-${process.pid}`;
let plainContainer = '';
let orphanSlot = '';
let resumingSlot = '';

async function exists(kind: 'container' | 'volume', name: string): Promise<boolean> {
  const target = kind === 'container' ? docker.getContainer(name) : docker.getVolume(name);
  return target.inspect().then(
    () => true,
    () => false,
  );
}

beforeAll(async () => {
  await requireServices();
  sys = new System({ tag: 'gctest' });
  live = sys.newWorkerId();
  dead = `${sys.newWorkerId()}-dead`;
  deadPool = `${sys.newWorkerId()}-deadpool`;
  other = `${sys.newWorkerId()}-other`;
  // Registered for the system's clean-up (containers by worker or pool owner, and their volumes).
  for (const id of [dead, deadPool, other]) sys.workerEnv(id);
  await sys.startWorker(live);

  // A worker killed with -9: its container still runs, the registry forgot it (reaped).
  const deadSandbox = new DockerSandbox({ workerId: dead, volume: sys.volume, queuePrefix: sys.prefix, docker });
  await deadSandbox.ensure();
  await deadSandbox.dispose('keep');

  // A dead worker's pool: one slot of a task that is over (no record left), one of a task that may resume.
  await sys.store.lifecycle.create({
    id: 'resuming',
    request: { prompt: 'resumes elsewhere' },
    createdAt: new Date().toISOString(),
    maxSteps: 5,
  });
  const pool = new TaskSandboxPool({
    base: { workerId: deadPool, queuePrefix: sys.prefix, docker },
    assignments: {
      get: (task) => sys.store.slots.get(task),
      set: (task, slot) => sys.store.slots.set(task, slot),
    },
    warm: 0,
    docker,
  });
  for (const task of ['orphan', 'resuming'])
    expect((await pool.run(task, { action: 'create-file', filePath: 'a.txt', content: task })).ok).toBe(true);
  orphanSlot = (await sys.store.slots.get('orphan')) ?? '';
  resumingSlot = (await sys.store.slots.get('resuming')) ?? '';
  await pool.dispose('stop');

  // Another deployment's dead worker, and objects without our labels.
  const otherSandbox = new DockerSandbox({ workerId: other, volume: otherVolume, queuePrefix: otherPrefix, docker });
  await otherSandbox.ensure();
  await otherSandbox.dispose('stop');
  await docker.createVolume({ Name: plainVolume });
  const plain = await docker.createContainer({
    Image: 'research-sandbox:latest',
    name: `research-gcplain-${process.pid}`,
    Labels: { 'research.worker': dead },
    Entrypoint: ['sleep'],
    Cmd: ['infinity'],
    HostConfig: { NetworkMode: 'none' },
  });
  plainContainer = plain.id;
}, 180_000);

afterAll(async () => {
  await sys?.close();
  // What the test made beside the system; one that is gone already (or was never made) is fine.
  const settle = (removal: Promise<unknown>) => removal.catch(() => undefined);
  await settle(docker.getContainer(plainContainer).remove({ force: true }));
  for (const v of [otherVolume, plainVolume]) await settle(docker.getVolume(v).remove());
}, 60_000);

describe('research gc', () => {
  it('--dry-run lists the dead workers’ objects and removes nothing', async () => {
    const { code, stdout, stderr } = await cli(['gc', '--dry-run', '--min-age', '0'], sys.env()).done;
    expect(stderr).toContain('3 to remove');
    expect(code).toBe(EXIT.ok);
    const lines = stdout.trimEnd().split('\n').sort();
    expect(lines).toEqual(
      [
        `would remove container research-sandbox-${dead} (owner ${dead}: worker ${dead} is dead)`,
        `would remove container research-sandbox-${orphanSlot} (owner ${deadPool}: worker ${deadPool} is dead)`,
        `would remove volume research-slot-${orphanSlot} (owner ${deadPool}: worker ${deadPool} is dead)`,
      ].sort(),
    );
    expect(await exists('container', `research-sandbox-${dead}`)).toBe(true);
    expect(await exists('volume', `research-slot-${orphanSlot}`)).toBe(true);
  });

  it('removes exactly those, and keeps the live worker’s, the unfinished task’s slot and what is not ours', async () => {
    const { code, stdout } = await cli(['gc', '--min-age', '0', '--json'], sys.env()).done;
    expect(code).toBe(EXIT.ok);
    const result = JSON.parse(stdout) as {
      removed: { kind: string; name: string }[];
      kept: { kind: string; name: string; reason: string }[];
    };
    expect(result.removed.map((i) => `${i.kind} ${i.name}`).sort()).toEqual(
      [
        `container research-sandbox-${dead}`,
        `container research-sandbox-${orphanSlot}`,
        `volume research-slot-${orphanSlot}`,
      ].sort(),
    );
    expect(result.kept).toEqual(
      expect.arrayContaining([
        { kind: 'container', name: `research-sandbox-${live}`, owner: live, reason: `worker ${live} is alive` },
        {
          kind: 'container',
          name: `research-sandbox-${resumingSlot}`,
          owner: deadPool,
          reason: `slot ${resumingSlot} holds a task that is not over`,
        },
      ]),
    );
    expect(await exists('container', `research-sandbox-${dead}`)).toBe(false);
    expect(await exists('container', `research-sandbox-${orphanSlot}`)).toBe(false);
    expect(await exists('volume', `research-slot-${orphanSlot}`)).toBe(false);
    // Still there: the live worker's container (it keeps working), the resuming task's slot,
    // the other deployment's container and volume, everything without our labels, the shared volume.
    expect(await exists('container', `research-sandbox-${live}`)).toBe(true);
    expect(await exists('container', `research-sandbox-${resumingSlot}`)).toBe(true);
    expect(await exists('volume', `research-slot-${resumingSlot}`)).toBe(true);
    expect(await exists('container', `research-sandbox-${other}`)).toBe(true);
    expect(await exists('volume', otherVolume)).toBe(true);
    expect(await exists('container', plainContainer)).toBe(true);
    expect(await exists('volume', plainVolume)).toBe(true);
    expect(await exists('volume', sys.volume)).toBe(true);
    const liveLabels = (await docker.getContainer(`research-sandbox-${live}`).inspect()).Config.Labels;
    expect(liveLabels).toMatchObject({ 'research.sandbox': 'true', 'research.prefix': sys.prefix });
  });

  it('without --min-age keeps objects younger than an hour, dead owner or not', async () => {
    const { code, stdout, stderr } = await cli(['gc', '--dry-run'], sys.env()).done;
    expect(code).toBe(EXIT.ok);
    expect(stdout).toBe('');
    expect(stderr).toContain('0 to remove');
  });

  it('is in the help', async () => {
    const { stdout } = await cli(['--help'], {}).done;
    expect(stdout).toMatch(/gc \[options\]\s+remove sandbox containers and per-task volumes\s+of workers long dead/);
  });
});
