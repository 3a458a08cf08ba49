import Docker from 'dockerode';
import { Job, Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { stepQueueName } from '@research/queue';
import { replayPrompt, sleep } from '@research/testing';
import { useHarness } from '../test/harness.js';

const h = useHarness();
/** Worker ids of this run: containers are named after them, so concurrent runs must not share one. */
const w = (name: string) => `wt-${name}-${h.id}`;
const docker = new Docker();

describe('a worker with its sandbox container', () => {
  it('completes the offline research plan: todo.md ticked, the script output read back, report.md quoting it', async () => {
    await h.startInProcessWorker(w('a'));
    const id = await h.submit({ prompt: 'Research current market conditions and investment opportunities' });
    const view = await h.waitFinal(id);
    expect(view.status).toBe('completed');
    expect(view.workerId).toBe(w('a'));
    expect(view.result?.summary).toMatch(/report\.md/);

    const todo = (await h.store.files.read(id, 'todo.md'))?.toString() ?? '';
    expect(todo).toMatch(/- \[x\]/);
    expect(todo).not.toMatch(/- \[ \]/);
    const results = JSON.parse((await h.store.files.read(id, 'results.json'))?.toString() ?? '{}') as Record<
      string,
      unknown
    >;
    const report = (await h.store.files.read(id, 'report.md'))?.toString() ?? '';
    // Every total return in the report's table is one the script computed.
    const tickers = results.tickers as Record<string, { totalReturnPct: number }>;
    const rows = [...report.matchAll(/^\| ([A-Z]+) \|.*$/gm)].map((m) => ({
      ticker: m[1]!,
      totalReturn: Number(m[0].split('|')[4]!.trim()),
    }));
    expect(rows.length).toBe(Object.keys(tickers).length);
    for (const r of rows) expect(r.totalReturn).toBe(tickers[r.ticker]?.totalReturnPct);

    // The python step ran in the container and its output went back to the model.
    const actions = view.steps.map((s) => s.action);
    expect(new Set(actions)).toEqual(new Set(['create-file', 'execute-command', 'read-file', 'list-files']));
    const python = view.steps.find((s) => s.action === 'execute-command');
    expect(python?.exitCode).toBe(0);
    expect(view.steps.every((s) => s.status === 'completed')).toBe(true);

    // The steps are completed child jobs of the task job.
    const task = await h.queue.getJob(id);
    const deps = await task!.getDependencies({ processed: { count: 100 } });
    expect(Object.keys(deps.processed ?? {})).toHaveLength(view.steps.length);
    const stepQueue = new Queue(stepQueueName(w('a')), { connection: h.redis, prefix: h.prefix });
    for (const s of view.steps) {
      const child = await Job.fromId(stepQueue, `${id}-${s.index}`);
      expect(await child?.getState()).toBe('completed');
      expect(child?.parentKey).toBe(`${h.prefix}:agent:${id}`);
    }
    await stepQueue.close();
    const logs = await h.queue.getJobLogs(id);
    expect(logs.logs).toHaveLength(view.steps.length);
    expect(logs.logs[0]).toMatch(/^step 1 · create-file · \d+ ms$/);
    expect(task!.progress).toMatchObject({ phase: 'done', step: view.steps.length });
  });

  it('cancels a running `sleep 300` and kills the command', async () => {
    const id = await h.submit({ prompt: replayPrompt(['sleep 300']) });
    await h.waitFor(id, (v) => v.steps.some((s) => s.status === 'running'));
    await sleep(300);
    await h.store.cancels.request(id);
    const view = await h.waitFinal(id, 20_000);
    expect(view.status).toBe('cancelled');
    expect(view.error?.code).toBe('cancelled');
    const [container] = await docker.listContainers({ filters: { label: [`research.worker=${w('a')}`] } });
    const exec = await docker
      .getContainer(container!.Id)
      .exec({ Cmd: ['sh', '-c', 'ps -eo args | grep -c "^sleep 300" || true'], AttachStdout: true });
    const stream = await exec.start({ Detach: false });
    const out = await new Promise<string>((resolve) => {
      let s = '';
      stream.on('data', (d: Buffer) => (s += d.toString()));
      stream.on('end', () => resolve(s));
    });
    expect(out.replace(/[^0-9]/g, '')).toBe('0');
  });

  it('gives a second worker its own container, labelled with its id', async () => {
    const b = await h.startInProcessWorker(w('b'));
    const list = await docker.listContainers({ filters: { label: ['research.sandbox=true'] } });
    const mine = list.filter((c) => [w('a'), w('b')].includes(c.Labels['research.worker'] ?? ''));
    expect(mine.map((c) => c.Labels['research.worker']).sort()).toEqual([w('a'), w('b')]);
    expect(new Set(mine.map((c) => c.Id)).size).toBe(2);
    const info = await docker.getContainer(mine.find((c) => c.Labels['research.worker'] === w('b'))!.Id).inspect();
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.Mounts.some((m) => m.Destination === '/workspace' && m.Name === h.volume)).toBe(true);
    await b.close(5_000);
  });
});

describe('crash safety', () => {
  it('finishes a task on another worker after kill -9, without re-running finished steps', async () => {
    await h.stopInProcessWorkers();
    const fast = { WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000' };
    const victim = await h.startWorker(w('victim'), { ...fast, WORKER_CONCURRENCY: '1' });
    // Three steps; each appends its number only after its work, so a finished step shows once.
    const id = await h.submit({
      prompt: replayPrompt([
        'sleep 1 && echo 0 >> runs.txt',
        'sleep 3 && echo 1 >> runs.txt',
        'sleep 1 && echo 2 >> runs.txt',
      ]),
    });
    await h.waitFor(
      id,
      (v) => v.workerId === w('victim') && v.steps.some((s) => s.index === 1 && s.status === 'running'),
    );
    await h.stop(victim, 'SIGKILL');
    const rescuer = await h.startWorker(w('rescuer'), fast);
    const view = await h.waitFinal(id, 90_000);
    expect(view.status).toBe('completed');
    expect(view.workerId).toBe(w('rescuer'));
    const runs = (await h.store.files.read(id, 'runs.txt'))?.toString().trim().split('\n');
    expect(runs).toEqual(['0', '1', '2']);
    // The step the victim finished is answered from its stored result, not run again.
    expect(view.steps.find((s) => s.index === 0)?.attempts).toBe(1);
    await h.stop(rescuer);
  });

  it('a task that moves off a live worker (its lock expired) waits for the step that worker still runs: the command runs once', async () => {
    // A heartbeat of 10 s: the frozen worker stays alive in the registry's eyes (60 s), while its
    // 3 s task lock expires and the task moves to the other worker.
    const fast = { WORKER_LOCK_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000', WORKER_HEARTBEAT_MS: '10000' };
    const frozen = await h.startWorker(w('frozen'), { ...fast, WORKER_CONCURRENCY: '1' });
    const id = await h.submit({
      prompt: replayPrompt(['echo 0 >> runs.txt', 'sleep 4 && echo 1 >> runs.txt', 'echo 2 >> runs.txt']),
    });
    await h.waitFor(
      id,
      (v) => v.workerId === w('frozen') && v.steps.some((s) => s.index === 1 && s.status === 'running'),
    );
    // The worker process stops (as in a long GC pause or a host hiccup); its command runs on in the container.
    frozen.child.kill('SIGSTOP');
    try {
      const taker = await h.startWorker(w('taker'), fast);
      await h.waitFor(id, (v) => v.workerId === w('taker'), 30_000);
      // Past the command's 4 s: it has finished in the container, but nobody could record it yet.
      await sleep(3_000);
      frozen.child.kill('SIGCONT');
      const view = await h.waitFinal(id, 60_000);
      expect(view.status).toBe('completed');
      expect(view.workerId).toBe(w('taker'));
      const runs = (await h.store.files.read(id, 'runs.txt'))?.toString().trim().split('\n');
      expect(runs).toEqual(['0', '1', '2']);
      // The step stayed with the worker that ran it, in its queue.
      const stepQueue = new Queue(stepQueueName(w('frozen')), { connection: h.redis, prefix: h.prefix });
      expect(await (await Job.fromId(stepQueue, `${id}-1`))?.getState()).toBe('completed');
      await stepQueue.close();
      await h.stop(taker);
    } finally {
      frozen.child.kill('SIGCONT');
      await h.stop(frozen);
    }
  });
});

describe('lock fencing', () => {
  it('a run whose task lock was taken dispatches no further step and keeps off the checkpoint, before any renewal fails; the task then resumes and completes', async () => {
    // A 30 s lock is renewed only after 7.5 s of processing: the 4 s window below sees no renewal,
    // so only the fence can stop this run.
    const worker = await h.startInProcessWorker(w('fence'), {
      WORKER_LOCK_MS: '30000',
      WORKER_STALLED_INTERVAL_MS: '1000',
    });
    const id = await h.submit({
      prompt: replayPrompt(['sleep 1 && echo 0 >> runs.txt', 'echo 1 >> runs.txt', 'echo 2 >> runs.txt']),
    });
    await h.waitFor(id, (v) => v.steps.some((s) => s.index === 0 && s.status === 'running'));
    const lockKey = `${h.prefix}:agent:${id}:lock`;
    const checkpoint = await h.redis.hget(`${h.prefix}:task:${id}`, 'checkpoint');
    // Another run holds the lock now, as after this worker seemed gone for longer than the lock.
    expect(await h.redis.set(lockKey, 'another-run', 'PX', 4_000, 'XX')).toBe('OK');
    await h.waitFor(id, (v) => v.steps.some((s) => s.index === 0 && s.status === 'completed'));
    await sleep(1_500);
    expect(await h.redis.get(lockKey)).toBe('another-run');
    // Step 0 finished, yet this run neither dispatched step 1 nor checkpointed past step 0.
    expect(await h.store.steps.get(id, 1)).toBeUndefined();
    expect(await h.redis.hget(`${h.prefix}:task:${id}`, 'checkpoint')).toBe(checkpoint);
    // The other run never comes: its lock expires, the task stalls back and resumes here.
    const view = await h.waitFinal(id, 60_000);
    expect(view.status).toBe('completed');
    expect((await h.store.files.read(id, 'runs.txt'))?.toString().trim().split('\n')).toEqual(['0', '1', '2']);
    expect(view.steps.map((s) => s.status)).toEqual(['completed', 'completed', 'completed']);
    await worker.close(5_000);
  });
});
