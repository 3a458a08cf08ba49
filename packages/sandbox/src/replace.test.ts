import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@research/config';
import { buildImage, removeImage, removeSandboxes } from '@research/testing';
import { DockerSandbox } from './docker-sandbox.js';
import type { DockerSandboxOptions } from './options.js';
import { type SlotAssignments, TaskSandboxPool } from './task-pool.js';
import { containerOf, docker, removeWorker, requireDocker, runCommand, uniqueId } from './test-helpers.js';

/** Builds a one-line variant of the local sandbox image; resolves to its id. */
function build(tag: string, marker: string): Promise<string> {
  return buildImage(tag, `FROM research-sandbox:latest\nLABEL research.test-marker=${marker}\n`);
}

/** A logger whose warnings the test can read. */
function recordingLogger() {
  const lines: { msg: string; drift?: { field: string }[] }[] = [];
  const logger = createLogger({
    level: 'warn',
    pretty: false,
    destination: { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
  });
  return { logger, lines };
}

describe('a found container that differs from the configuration', () => {
  const run = uniqueId('replace');
  const tagA = `research-sandbox-${run}:a`;
  const tagB = `research-sandbox-${run}:b`;
  const moving = `research-sandbox-${run}:moving`;
  const workerId = `${run}-w`;
  const volume = `${run}-ws`;
  let idA = '';
  let idB = '';
  const opts = (o: Partial<DockerSandboxOptions> = {}): DockerSandboxOptions => ({
    workerId,
    volume,
    docker,
    queuePrefix: `{${run}}`,
    ...o,
  });

  beforeAll(async () => {
    await requireDocker();
    idA = await build(tagA, 'a');
    idB = await build(tagB, 'b');
  });
  afterAll(async () => {
    await removeWorker(workerId, volume);
    for (const tag of [tagA, tagB, moving]) await removeImage(tag);
  });

  it('is replaced at start when SANDBOX_IMAGE now names another image, and the workspace stays', async () => {
    const first = new DockerSandbox(opts({ image: tagA }));
    const a = await first.ensure();
    expect((await docker.getContainer(a.containerId).inspect()).Image).toBe(idA);
    expect((await first.run('t1', { action: 'create-file', filePath: 'kept.txt', content: 'from A' })).ok).toBe(true);
    await first.dispose('stop');

    const { logger, lines } = recordingLogger();
    const second = new DockerSandbox(opts({ image: tagB, logger }));
    const b = await second.ensure();
    expect(b.containerId).not.toBe(a.containerId);
    expect(b).toMatchObject({ created: true, replaced: ['image'] });
    expect((await docker.getContainer(b.containerId).inspect()).Image).toBe(idB);
    const gone = await docker
      .getContainer(a.containerId)
      .inspect()
      .then(
        () => false,
        () => true,
      );
    expect(gone).toBe(true);
    const all = await docker.listContainers({ all: true, filters: { label: [`research.worker=${workerId}`] } });
    expect(all.map((c) => c.Id)).toEqual([b.containerId]);
    // The log says why, field by field.
    const warn = lines.find((l) => l.msg.includes('differs from the configuration'));
    expect(warn?.msg).toContain(`image: want ${tagB}`);
    expect(warn?.msg).toContain(`have ${tagA}`);
    expect(warn?.drift?.map((d) => d.field)).toEqual(['image']);
    const read = await second.run('t1', { action: 'read-file', filePath: 'kept.txt' });
    expect(read).toMatchObject({ ok: true, result: { content: 'from A' } });
    await second.dispose('keep');
  });

  it('is kept when nothing differs', async () => {
    const before = await containerOf(workerId);
    const again = new DockerSandbox(opts({ image: tagB }));
    const info = await again.ensure();
    expect(info.containerId).toBe(before.id);
    expect(info.created).toBe(false);
    expect(info.replaced).toBeUndefined();
    await again.dispose('keep');
  });

  it('is replaced when the hardening spec changed (memory), naming the fields', async () => {
    const before = await containerOf(workerId);
    const { logger, lines } = recordingLogger();
    const smaller = new DockerSandbox(opts({ image: tagB, memoryMb: 512, logger }));
    const info = await smaller.ensure();
    expect(info.containerId).not.toBe(before.id);
    expect(info.replaced).toEqual(['memoryBytes', 'swapBytes']);
    const inspect = await docker.getContainer(info.containerId).inspect();
    expect(inspect.HostConfig.Memory).toBe(512 * 1024 * 1024);
    expect(inspect.Image).toBe(idB);
    expect(
      lines.some((l) => l.msg.includes(`memoryBytes: want ${512 * 1024 * 1024}, have ${1024 * 1024 * 1024}`)),
    ).toBe(true);
    const r = await runCommand(smaller, 't1', 'cat kept.txt');
    expect(r.stdout).toBe('from A');
    await smaller.dispose('keep');
  });

  it('a tag rebuilt while the container is in use: kept while it runs, replaced once it stopped', async () => {
    await docker.getImage(tagA).tag({ repo: `research-sandbox-${run}`, tag: 'moving' });
    const sb = new DockerSandbox(opts({ image: moving }));
    const first = await sb.ensure();
    expect((await docker.getContainer(first.containerId).inspect()).Image).toBe(idA);
    // The tag now names B; the running container holds this process's tasks and stays.
    await docker.getImage(tagB).tag({ repo: `research-sandbox-${run}`, tag: 'moving' });
    expect((await sb.ensure()).containerId).toBe(first.containerId);
    // Its tasks' commands are gone once it is stopped: the next ensure replaces it.
    await docker.getContainer(first.containerId).stop({ t: 0 });
    const r = await runCommand(sb, 't1', 'cat kept.txt');
    expect(r.stdout).toBe('from A');
    const now = await containerOf(workerId);
    expect(now.id).not.toBe(first.containerId);
    expect((await now.inspect()).Image).toBe(idB);
    await sb.dispose('keep');
  });

  it('a pool slot a resumed task adopts is replaced, its volume and files kept', async () => {
    const map = new Map<string, string>();
    const assignments: SlotAssignments = {
      get: async (t) => map.get(t),
      set: async (t, s) => {
        map.set(t, s);
      },
    };
    const poolWorker = `${run}-p`;
    const base = { workerId: poolWorker, docker, queuePrefix: `{${run}}` };
    try {
      const first = new TaskSandboxPool({ base: { ...base, image: tagA }, assignments, warm: 0, docker });
      expect((await first.run('p1', { action: 'create-file', filePath: 'f.txt', content: 'slot' })).ok).toBe(true);
      const slotId = map.get('p1') ?? '';
      const before = await containerOf(slotId);
      expect((await before.inspect()).Image).toBe(idA);
      await first.dispose('stop');

      // Another worker (same engine) resumes the task with another image.
      const second = new TaskSandboxPool({
        base: { ...base, workerId: `${run}-q`, image: tagB },
        assignments,
        warm: 0,
        docker,
      });
      const read = await second.run('p1', { action: 'read-file', filePath: 'f.txt' });
      expect(read).toMatchObject({ ok: true, result: { content: 'slot' } });
      const after = await containerOf(slotId);
      expect(after.id).not.toBe(before.id);
      expect((await after.inspect()).Image).toBe(idB);
      await second.releaseTask('p1');
      await second.dispose('remove');
      const left = await docker.listContainers({ all: true, filters: { label: [`research.slot=${slotId}`] } });
      expect(left).toHaveLength(0);
    } finally {
      await removeSandboxes([poolWorker, `${run}-q`]);
    }
  });
});
