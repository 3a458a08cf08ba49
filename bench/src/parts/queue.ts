import Docker from 'dockerode';
import { Job, Worker, type Queue } from 'bullmq';
import { createRedis, type Redis } from '@research/queue';
import { DockerSandbox } from '@research/sandbox';
import { REDIS_URL } from '@research/testing';
import { containerCpuMs, engineCpuMs, processCpuMs, redisCpuMs } from '../support/cpu.js';
import { callEach } from '../support/callers.js';
import { BenchSystem, replayTasks } from '../support/system.js';
import { percentile, perSecond, round } from '../support/stats.js';

export interface QueueBenchOptions {
  /** No-op jobs per measured raw BullMQ run. */
  rawJobs?: number;
  /** 1-step tasks per measured run. */
  tasks?: number;
  /** Worker concurrency of both the raw Worker and our worker (WORKER_CONCURRENCY). */
  concurrency?: number;
  /** Raw and task runs alternate this many times; the figures are medians. */
  rounds?: number;
}

/**
 * Our 1-step tasks/s (`execute-command "true"` through a real worker process and its container)
 * against the same command run through the runner alone (`Sandbox.run` on a container of its
 * own, in-process, the same number of callers as the worker's concurrency): what the queue,
 * the task record, the model loop and the step job cost on top of the command itself. Raw
 * BullMQ no-op jobs/s is kept for continuity (no design that runs a command in a container
 * can come near it). Queues drain after being filled while paused, after a warm-up; the
 * three kinds of run alternate so that other load on the machine hits them alike.
 */
export async function benchQueue({
  rawJobs = 10_000,
  tasks = 1_000,
  concurrency = 4,
  rounds = 3,
}: QueueBenchOptions = {}) {
  const system = await BenchSystem.open('queue');
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const noop = system.queue('noop');
    const worker = await system.startWorker(system.newWorkerId(), { WORKER_CONCURRENCY: String(concurrency) });
    await drainNoop(noop, system.redis, Math.min(1_000, rawJobs), concurrency);
    await system.runBatch(replayTasks(Math.min(100, tasks), 'true', 1), 120_000);

    const docker = new Docker();
    const runner = new DockerSandbox({ workerId: `${worker.name}-runner`, volume: `${system.volume}-runner`, docker });
    cleanups.push(async () => {
      await runner.dispose('remove').catch(() => undefined);
      await docker
        .getVolume(`${system.volume}-runner`)
        .remove()
        .catch(() => undefined);
    });
    await runner.ensure();
    await runCommands(runner, Math.min(200, tasks), concurrency);
    const cpu = () =>
      Promise.all([
        processCpuMs(worker.pid),
        redisCpuMs(system.redis),
        containerCpuMs(docker, worker.name),
        engineCpuMs(),
      ]);
    const rawRates: number[] = [];
    const runnerRates: number[] = [];
    const taskRates: number[] = [];
    const rawCpu = { node: 0, redis: 0, jobs: 0 };
    const taskCpu = [0, 0, 0, 0];
    let completed = 0;
    let failed = 0;
    let lost = 0;
    const busy: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const raw = await drainNoop(noop, system.redis, rawJobs, concurrency);
      rawRates.push(perSecond(rawJobs, raw.elapsedMs));
      rawCpu.node += raw.nodeCpuMs;
      rawCpu.redis += raw.redisCpuMs;
      rawCpu.jobs += rawJobs;

      const commands = await runCommands(runner, tasks, concurrency);
      runnerRates.push(perSecond(tasks, commands.elapsedMs));
      failed += commands.failed;

      const before = await cpu();
      const batch = await system.runBatch(replayTasks(tasks, 'true', 1), 600_000);
      const after = await cpu();
      after.forEach((v, i) => {
        taskCpu[i] = (taskCpu[i] ?? 0) + v - (before[i] ?? 0);
      });
      taskRates.push(perSecond(batch.completed, batch.elapsedMs));
      completed += batch.completed;
      failed += batch.failed;
      lost += batch.lost;
      // How long a task job held its worker slot (picked up → finished), under this load.
      for (const id of batch.ids.slice(0, 100)) {
        const job = await Job.fromId(system.agentQueue, id);
        if (job?.processedOn && job.finishedOn) busy.push(job.finishedOn - job.processedOn);
      }
    }
    const rawJobsPerSec = percentile(rawRates, 50);
    const taskJobsPerSec = percentile(taskRates, 50);
    const runnerCommandsPerSec = percentile(runnerRates, 50);
    const perTask = (i: number) => round((taskCpu[i] ?? 0) / Math.max(1, completed), 3);
    return {
      queue: {
        taskJobsPerSec,
        runnerCommandsPerSec,
        ratioVsRunner: round(taskJobsPerSec / runnerCommandsPerSec, 3),
        rawJobsPerSec,
        ratioVsRaw: round(taskJobsPerSec / rawJobsPerSec, 3),
        concurrency,
        taskBusyP50Ms: round(percentile(busy, 50)),
        // CPU per unit of work: where a task's cost goes, next to a no-op job's. The Redis and
        // Docker engine figures include whatever else uses them meanwhile.
        cpuMsPerRawJob: { node: round(rawCpu.node / rawCpu.jobs, 3), redis: round(rawCpu.redis / rawCpu.jobs, 3) },
        cpuMsPerTask: { worker: perTask(0), redis: perTask(1), sandbox: perTask(2), dockerEngine: perTask(3) },
        tasks: tasks * rounds,
        failed,
        lost,
      },
    };
  } finally {
    for (const c of cleanups) await c();
    await system.close();
  }
}

/** `n` `execute-command "true"` through the runner, `concurrency` at a time. */
async function runCommands(
  sandbox: DockerSandbox,
  n: number,
  concurrency: number,
): Promise<{ elapsedMs: number; failed: number }> {
  let failed = 0;
  const started = performance.now();
  await callEach(n, concurrency, async (_, c) => {
    const outcome = await sandbox.run(`runner-${c}`, { action: 'execute-command', command: 'true' });
    if (!outcome.ok || outcome.result.action !== 'execute-command' || outcome.result.exitCode !== 0) failed++;
  });
  return { elapsedMs: performance.now() - started, failed };
}

/** Fills the paused queue with `n` jobs, then times one Worker (processor returns at once) draining it. */
async function drainNoop(
  queue: Queue,
  redis: Redis,
  n: number,
  concurrency: number,
): Promise<{ elapsedMs: number; nodeCpuMs: number; redisCpuMs: number }> {
  await queue.pause();
  for (let i = 0; i < n; i += 1_000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1_000, n - i) }, (_, k) => ({ name: 'noop', data: { i: i + k } })),
    );
  }
  const connection = createRedis(REDIS_URL, 'worker');
  const worker = new Worker(queue.name, async () => undefined, {
    connection,
    prefix: queue.opts.prefix,
    concurrency,
    autorun: false,
  });
  let done = 0;
  const drained = new Promise<void>((resolve) => {
    worker.on('completed', () => {
      if (++done === n) resolve();
    });
  });
  void worker.run();
  await worker.waitUntilReady();
  const [cpu, redisCpu] = [process.cpuUsage(), await redisCpuMs(redis)];
  const started = performance.now();
  await queue.resume();
  await drained;
  const elapsedMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const nodeCpuMs = (used.user + used.system) / 1_000;
  const redisUsedMs = (await redisCpuMs(redis)) - redisCpu;
  await worker.close();
  await connection.quit();
  return { elapsedMs, nodeCpuMs, redisCpuMs: redisUsedMs };
}
