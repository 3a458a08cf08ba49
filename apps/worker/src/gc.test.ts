/**
 * A worker's own garbage collection, on the real Redis and Docker engine: liveness runs it once
 * the death watch can judge, and it removes a dead worker's container while a live worker's stays.
 */
import Dockerode from 'dockerode';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@research/config';
import { DeathWatch, WorkerRegistry } from '@research/queue';
import { DockerSandbox } from '@research/sandbox';
import { until } from '@research/testing';
import { useHarness } from '../test/harness.js';
import { sandboxGc } from './gc.js';
import { Liveness } from './liveness.js';

const docker = new Dockerode();
const h = useHarness();

const exists = (name: string) =>
  docker
    .getContainer(name)
    .inspect()
    .then(
      () => true,
      () => false,
    );

describe('garbage collection by a worker', () => {
  it('liveness removes a dead worker’s container once it can judge, never a live worker’s', async () => {
    const liveId = h.newWorkerId();
    const deadId = `${h.newWorkerId()}-dead`;
    h.workerEnv(deadId); // for the harness's clean-up
    const runtime = await h.startInProcessWorker(liveId);
    const dead = new DockerSandbox({ workerId: deadId, volume: h.volume, queuePrefix: h.prefix, docker });
    await dead.ensure();
    await dead.dispose('stop');

    const heartbeatMs = 200;
    const connection = h.redis.duplicate();
    const registry = new WorkerRegistry(connection, h.prefix);
    const deathWatch = new DeathWatch(registry, connection, heartbeatMs * 6);
    const logger = createLogger({ level: 'silent', pretty: false });
    let runs = 0;
    const gc = sandboxGc({
      prefix: h.prefix,
      registry,
      store: h.store,
      staleMs: deathWatch.staleMs,
      logger,
      gc: { minAgeMs: 0, docker },
    });
    const liveness = new Liveness({
      workerId: h.newWorkerId(),
      connection,
      queues: connection,
      registry,
      deathWatch,
      running: () => [],
      sandbox: runtime.sandbox,
      sandboxInfo: { containerId: '', name: '', image: '', created: false, started: false },
      heartbeatMs,
      retentionMs: 0,
      logger,
      collectGarbage: async () => {
        runs++;
        return gc();
      },
    });
    try {
      await liveness.start();
      // Not before the watch has been connected for six beats: a Redis restart silences everyone.
      expect(runs).toBe(0);
      await until(
        'the dead worker’s container is removed',
        async () => !(await exists(`research-sandbox-${deadId}`)),
        30_000,
      );
      expect(runs).toBe(1);
      expect(await exists(`research-sandbox-${liveId}`)).toBe(true);
      // The live worker still runs commands in it.
      const task = `gc-${h.prefix.slice(1, 9)}`;
      const outcome = await runtime.sandbox.run(task, { action: 'execute-command', command: 'echo alive' });
      expect(outcome).toMatchObject({ ok: true, result: { stdout: 'alive\n' } });
    } finally {
      liveness.stop();
      deathWatch.close();
      await connection.quit().catch(() => connection.disconnect());
    }
  }, 120_000);
});
