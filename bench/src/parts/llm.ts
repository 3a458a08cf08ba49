import os from 'node:os';
import Docker from 'dockerode';
import type { Job } from 'bullmq';
import { parseStepLogLine, type TaskJobData } from '@research/queue';
import { freePort, Spawned, until, type EnvOverrides } from '@research/testing';
import { MODEL_SERVER, STEP_MIX } from '../llm/script.js';
import { containerCpuMs, engineCpuMs, processCpuMs, redisCpuMs } from '../support/cpu.js';
import { collectGarbage, rssMb } from '../support/process.js';
import { percentile, round, sleep } from '../support/stats.js';
import { callEach } from '../support/callers.js';
import { BenchSystem } from '../support/system.js';

export type ToolFormat = 'xml' | 'native';

export interface LlmBenchOptions {
  /** Tasks in flight: the workers' slots in all (`WORKER_CONCURRENCY` = C / W). Default 1,000. */
  inFlight?: number;
  /** Worker processes, each with its own container. Default 4. */
  workers?: number;
  /** The model's mean answer time per turn, in ms. Default 2,000. */
  latencyMs?: number;
  /** Each answer takes latencyMs × (1 ± jitter), uniformly. Default 0.25. */
  jitter?: number;
  /** Tasks per measured run = rounds × inFlight (every slot runs about `rounds` tasks). Default 3. */
  rounds?: number;
  /** Tool-call formats, each measured in a run of its own (fresh workers). Default both. */
  formats?: ToolFormat[];
  /** Tasks submitted one at a time to idle workers, for the pickup figures. Default 50. */
  pickupSamples?: number;
  /** Tasks whose steps are read back for the step overhead and Σs. Default 300. */
  stepSamples?: number;
}

const K = STEP_MIX.length;
const SUBMIT_CONCURRENCY = 32;

/**
 * Model-bound tasks at scale: a real HTTP model endpoint (its own process) that answers each
 * turn after L ± jitter ms, K = 5 steps of all four actions and a final answer per task, C
 * tasks in flight across W worker processes, tasks submitted through the API. Measured per
 * format: throughput against the Little's-law ideal C / ((K+1)·L + Σs), every process's CPU
 * (so the machine's own ceiling comes from the same run), worker RSS per task in flight, the
 * step overhead under that load, and the pickup at idle.
 */
export async function benchLlm(opts: LlmBenchOptions = {}) {
  const formats = opts.formats ?? ['xml', 'native'];
  const out: Record<string, unknown> = {};
  for (const format of formats) {
    // One format failing (a process that died, a timeout) keeps the other's figures.
    try {
      out[format] = await runFormat(format, opts);
    } catch (err) {
      out[format] = { error: (err as Error).message.split('\n')[0] ?? String(err) };
      process.stderr.write(`bench: llm ${format} failed: ${(err as Error).stack ?? String(err)}\n`);
    }
  }
  return { llm: out };
}

async function runFormat(format: ToolFormat, opts: LlmBenchOptions) {
  const inFlight = opts.inFlight ?? 1_000;
  const workerCount = opts.workers ?? 4;
  const latencyMs = opts.latencyMs ?? 2_000;
  const jitter = opts.jitter ?? 0.25;
  const rounds = opts.rounds ?? 3;
  const perWorker = Math.ceil(inFlight / workerCount);
  const slots = perWorker * workerCount;
  const system = await BenchSystem.open(`llm-${format}`);
  const modelPort = await freePort();
  const model = new Spawned('model', MODEL_SERVER, {
    ...process.env,
    PORT: String(modelPort),
    MODEL_LATENCY_MS: String(latencyMs),
    MODEL_JITTER: String(jitter),
  });
  const docker = new Docker();
  try {
    await until(
      'the model server',
      async () => {
        model.assertAlive();
        return fetch(`http://127.0.0.1:${modelPort}/`).then(
          (r) => r.ok,
          () => false,
        );
      },
      // A busy machine can take seconds to start a node process.
      60_000,
      50,
    );
    const api = await system.startApi();
    const env: EnvOverrides = {
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: `http://127.0.0.1:${modelPort}/v1`,
      LLM_API_KEY: 'bench',
      TOOL_CALL_FORMAT: format,
      WORKER_CONCURRENCY: String(perWorker),
    };
    const workers = await Promise.all(
      Array.from({ length: workerCount }, () => system.startWorker(system.newWorkerId(), env)),
    );
    const prompt = 'Research current market conditions and investment opportunities';
    const submit = async (n: number): Promise<{ ids: string[]; sentAt: number[]; rejected: number }> => {
      const ids: string[] = [];
      const sentAt: number[] = [];
      let rejected = 0;
      await callEach(n, SUBMIT_CONCURRENCY, async (i) => {
        sentAt[i] = Date.now();
        try {
          ids[i] = await system.submit({ prompt, maxSteps: K + 1 });
        } catch {
          rejected++;
        }
      });
      return { ids, sentAt, rejected };
    };
    const finishedCount = async () => {
      const c = await system.finished();
      return c.completed + c.failed + c.cancelled;
    };
    const waitFinished = async (target: number, timeoutMs: number) => {
      await until(
        `${target} tasks to finish`,
        async () => {
          for (const w of workers) w.assertAlive();
          return (await finishedCount()) >= target;
        },
        timeoutMs,
        200,
      );
    };
    const taskMs = (K + 1) * latencyMs;

    // Pickup at idle (also the warm-up: JIT, connections, the containers' runners).
    const pickupSamples = opts.pickupSamples ?? 50;
    const pickupIds: string[] = [];
    const pickupSent: number[] = [];
    for (let i = 0; i < pickupSamples; i++) {
      const sentAt = Date.now();
      pickupIds.push(await system.submit({ prompt, maxSteps: K + 1 }));
      pickupSent.push(sentAt);
      await sleep(Math.max(20, Math.min(200, taskMs / Math.max(1, pickupSamples))));
    }
    await waitFinished(pickupSamples, 20 * taskMs + 60_000);
    const pickup: number[] = [];
    // Where the pickup goes: sent → the job added (the API's intake), added → picked up by a
    // worker (BullMQ's wake-up and move to active), picked up → started (the worker's start).
    const pickupSplit = { intake: [] as number[], queue: [] as number[], start: [] as number[] };
    for (const [i, id] of pickupIds.entries()) {
      const startedAt = (await system.store.records.view(id))?.startedAt;
      if (!startedAt) continue;
      const sent = pickupSent[i] ?? 0;
      pickup.push(Date.parse(startedAt) - sent);
      const job = await system.agentQueue.getJob(id);
      if (job?.processedOn === undefined) continue;
      pickupSplit.intake.push(job.timestamp - sent);
      pickupSplit.queue.push(job.processedOn - job.timestamp);
      pickupSplit.start.push(Date.parse(startedAt) - job.processedOn);
    }

    const idleRss = await Promise.all(workers.map((w) => settledRssMb(w)));

    // The load: rounds × C tasks submitted to the paused queue, then released at once.
    const tasks = rounds * slots;
    await system.agentQueue.pause();
    const apiCpu0 = await processCpuMs(api.pid);
    const submitted = await submit(tasks);
    const cpu = async () => ({
      workers: await Promise.all(workers.map((w) => processCpuMs(w.pid))),
      api: await processCpuMs(api.pid),
      redis: await redisCpuMs(system.redis),
      sandboxes: (await Promise.all(workers.map((w) => containerCpuMs(docker, w.name)))).reduce((a, b) => a + b, 0),
      dockerEngine: await engineCpuMs(),
      model: await processCpuMs(model.pid),
    });
    const cpuBefore = await cpu();
    const load0 = os.loadavg()[0] ?? 0;
    const startedAt = Date.now();
    await system.agentQueue.resume();

    // RSS while every slot is busy (tasks still waiting): what the kernel charges under load.
    const rssUnderLoad: number[][] = workers.map(() => []);
    let liveRss: number[] | undefined;
    const target = pickupSamples + tasks - submitted.rejected;
    const deadline = Date.now() + rounds * 20 * taskMs + 120_000;
    while ((await finishedCount()) < target) {
      for (const w of workers) w.assertAlive();
      if (Date.now() > deadline) throw new Error(`llm ${format}: tasks did not finish in time`);
      // Tasks submitted through the API wait as `prioritized` (every task has a priority).
      const waiting = await system.agentQueue.getJobCountByTypes('wait', 'prioritized');
      if (waiting > 0 && Date.now() - startedAt > taskMs / 2) {
        for (const [i, w] of workers.entries()) rssUnderLoad[i]?.push(await rssMb(w));
        // Once, half-way: after a forced GC, what the tasks in flight really hold.
        if (!liveRss && Date.now() - startedAt > (rounds * taskMs) / 2)
          liveRss = await Promise.all(workers.map(gcRssMb));
      }
      await sleep(1_000);
    }
    const elapsedMs = Date.now() - startedAt;
    const cpuAfter = await cpu();
    const load1 = os.loadavg()[0] ?? 0;

    // Throughput by Little's law over the window in which tasks were still waiting (from the
    // first start to the last): the mean number in flight ÷ the mean task time. Counting
    // finishes in a window instead overstated it: tasks released together finish in bunches.
    const jobs = (await Promise.all(submitted.ids.filter(Boolean).map((id) => system.agentQueue.getJob(id)))).filter(
      (j): j is Job<TaskJobData> => j?.processedOn !== undefined && j.finishedOn !== undefined,
    );
    const spans = jobs.map((j) => [j.processedOn ?? 0, j.finishedOn ?? 0] as const);
    const t0 = Math.min(...spans.map((s) => s[0]));
    const t1 = Math.max(...spans.map((s) => s[0]));
    const busyMs = spans.reduce((a, [p, f]) => a + Math.max(0, Math.min(f, t1) - Math.max(p, t0)), 0);
    const meanInFlight = t1 > t0 ? busyMs / (t1 - t0) : slots;
    const durations = spans.map(([p, f]) => f - p);
    const meanTaskMs = durations.reduce((a, b) => a + b, 0) / Math.max(1, durations.length);
    const throughput = (meanInFlight * 1_000) / meanTaskMs;
    const finished = spans;

    // Steps of a sample of tasks: their own time (Σs) and the overhead around them.
    const sample = submitted.ids.filter(Boolean).slice(-(opts.stepSamples ?? 300));
    const ownMs: number[] = [];
    const overhead: number[] = [];
    let wrongShape = 0;
    for (const id of sample) {
      const [view, logs] = await Promise.all([system.store.records.view(id), system.agentQueue.getJobLogs(id)]);
      if (view?.status !== 'completed' || view.steps.length !== K) wrongShape++;
      const roundTrip = new Map<number, number>();
      for (const line of logs.logs) {
        const logged = parseStepLogLine(line);
        if (logged) roundTrip.set(logged.index, logged.durationMs);
      }
      let sum = 0;
      for (const step of view?.steps ?? []) {
        sum += step.durationMs ?? 0;
        const rt = roundTrip.get(step.index);
        if (rt !== undefined && step.durationMs !== undefined) overhead.push(rt - step.durationMs);
      }
      ownMs.push(sum);
    }
    const sumStepsMs = ownMs.reduce((a, b) => a + b, 0) / Math.max(1, ownMs.length);
    const idealPerSec = (slots * 1_000) / ((K + 1) * latencyMs + sumStepsMs);

    const counts = await system.finished();
    const done = finished.length;
    const steps = done * K;
    const d = (k: 'api' | 'redis' | 'sandboxes' | 'dockerEngine' | 'model') => cpuAfter[k] - cpuBefore[k];
    const workerCpu = cpuAfter.workers.reduce((a, v, i) => a + v - (cpuBefore.workers[i] ?? 0), 0);
    const apiSubmitCpu = cpuBefore.api - apiCpu0 + d('api');
    const perTask = {
      worker: round(workerCpu / done, 2),
      api: round(apiSubmitCpu / done, 2),
      redis: round(d('redis') / done, 2),
      sandboxes: round(d('sandboxes') / done, 2),
      dockerEngine: round(d('dockerEngine') / done, 2),
      modelServer: round(d('model') / done, 2),
    };
    const totalCpuPerTask = Object.values(perTask).reduce((a, b) => a + b, 0);
    const nproc = os.availableParallelism();
    // If this run had the whole machine: its CPUs ÷ the CPU every process spent per task.
    const ceilingPerSec = (nproc * 1_000) / totalCpuPerTask;
    const meanRss = (rows: number[][]) =>
      rows.map((r) => (r.length > 0 ? percentile(r, 50) : Number.NaN)).reduce((a, b) => a + b, 0) / rows.length;
    const idleMean = idleRss.reduce((a, b) => a + b, 0) / idleRss.length;
    const loadMean = meanRss(rssUnderLoad);
    const liveMean = liveRss ? liveRss.reduce((a, b) => a + b, 0) / liveRss.length : Number.NaN;
    return {
      efficiency: round(throughput / idealPerSec, 3),
      efficiencyVsCeiling: round(throughput / Math.min(idealPerSec, ceilingPerSec), 3),
      tasksPerSec: round(throughput, 2),
      idealTasksPerSec: round(idealPerSec, 2),
      machineCeilingTasksPerSec: round(ceilingPerSec, 2),
      meanInFlight: round(meanInFlight, 1),
      meanTaskMs: round(meanTaskMs),
      taskP50Ms: round(percentile(durations, 50)),
      taskP99Ms: round(percentile(durations, 99)),
      idealTaskMs: round((K + 1) * latencyMs + sumStepsMs),
      sumStepsMs: round(sumStepsMs),
      cpuMsPerStep: round(workerCpu / steps, 3),
      cpuMsPerTask: { ...perTask, total: round(totalCpuPerTask, 2) },
      rssMiBPerTask: round((loadMean - idleMean) / perWorker, 3),
      liveMiBPerTask: round((liveMean - idleMean) / perWorker, 3),
      workerRssMiB: { idle: round(idleMean, 1), underLoad: round(loadMean, 1), afterGcUnderLoad: round(liveMean, 1) },
      overheadP50Ms: round(percentile(overhead, 50)),
      overheadP99Ms: round(percentile(overhead, 99)),
      pickupP50Ms: round(percentile(pickup, 50)),
      pickupP99Ms: round(percentile(pickup, 99)),
      pickupSplitP50Ms: {
        intake: round(percentile(pickupSplit.intake, 50)),
        queue: round(percentile(pickupSplit.queue, 50)),
        start: round(percentile(pickupSplit.start, 50)),
      },
      inFlight: slots,
      workers: workerCount,
      latencyMs,
      tasks: done,
      elapsedS: round(elapsedMs / 1_000, 1),
      loadAvg1m: [round(load0), round(load1)],
      failed: counts.failed,
      wrongShape,
      lost: target - (await finishedCount()),
      rejected: submitted.rejected,
    };
  } finally {
    await system.close();
    await model.stop('SIGTERM', 5_000);
  }
}

/** GC, a pause, then RSS (MiB). */
async function gcRssMb(p: Spawned): Promise<number> {
  collectGarbage(p);
  await sleep(300);
  return rssMb(p);
}

/** GC twice with pauses, then RSS: the idle baseline. */
async function settledRssMb(p: Spawned): Promise<number> {
  await gcRssMb(p);
  await sleep(500);
  return gcRssMb(p);
}
