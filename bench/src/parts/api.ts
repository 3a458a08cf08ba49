import autocannon from 'autocannon';
import type { Queue } from 'bullmq';
import { JOBS, jobOptions, type TaskJobData } from '@research/queue';
import { processCpuMs, redisCpuMs } from '../support/cpu.js';
import { BenchSystem } from '../support/system.js';
import { percentile, perSecond, round } from '../support/stats.js';

export interface ApiBenchOptions {
  /** Concurrent HTTP connections, and concurrent `queue.add` callers in the baseline. */
  concurrency?: number;
  /** Seconds of each measured run. */
  durationS?: number;
  /** Raw and HTTP runs alternate this many times; the figures are medians. */
  rounds?: number;
  /** LOG_LEVEL of the API process (default `warn`: one `info` line per accepted task is not intake). */
  logLevel?: string;
}

const PROMPT = 'Research current market conditions and investment opportunities';

/**
 * Intake: `POST /v1/jobs` accepted/s against the real API process (no worker runs, so nothing
 * but intake is measured) vs raw `queue.add` of the same payload and job options with the same
 * concurrency, on the same Redis. The two kinds of run alternate.
 */
export async function benchApi({
  concurrency = 16,
  durationS = 4,
  rounds = 3,
  logLevel = 'warn',
}: ApiBenchOptions = {}) {
  const system = await BenchSystem.open('api');
  try {
    const api = await system.startApi({ LOG_LEVEL: logLevel });
    const { apiUrl: url, apiKey: key } = system;
    const raw = system.queue('raw-add');
    await rawAdd(raw, concurrency, 1_000);
    const warm = await post(url, key, concurrency, 1);

    const rawRates: number[] = [];
    const apiRates: number[] = [];
    const cpu = { api: 0, apiRedis: 0, accepted: 0, node: 0, rawRedis: 0, added: 0 };
    const latency = { p50: [] as number[], p99: [] as number[] };
    let non2xx = warm.non2xx;
    let errors = warm.errors;
    for (let r = 0; r < rounds; r++) {
      const rawStart = [process.cpuUsage(), await redisCpuMs(system.redis)] as const;
      const rawRun = await rawAdd(raw, concurrency, durationS * 1_000);
      const rawUsed = process.cpuUsage(rawStart[0]);
      cpu.node += (rawUsed.user + rawUsed.system) / 1_000;
      cpu.rawRedis += (await redisCpuMs(system.redis)) - rawStart[1];
      cpu.added += rawRun.added;
      rawRates.push(perSecond(rawRun.added, rawRun.elapsedMs));

      const apiStart = [await processCpuMs(api.pid), await redisCpuMs(system.redis)] as const;
      const apiRun = await post(url, key, concurrency, durationS);
      cpu.api += (await processCpuMs(api.pid)) - apiStart[0];
      cpu.apiRedis += (await redisCpuMs(system.redis)) - apiStart[1];
      cpu.accepted += apiRun['2xx'];
      apiRates.push(perSecond(apiRun['2xx'], apiRun.finish.getTime() - apiRun.start.getTime()));
      latency.p50.push(apiRun.latency.p50);
      latency.p99.push(apiRun.latency.p99);
      non2xx += apiRun.non2xx;
      errors += apiRun.errors;
    }
    // The HTTP stack's own ceiling here: the API's cheapest route, same connections.
    const health = await autocannon({
      url: `${url}/healthz`,
      connections: concurrency,
      duration: Math.min(3, durationS),
    });

    const rawAddPerSec = percentile(rawRates, 50);
    const acceptedPerSec = percentile(apiRates, 50);
    // Every task record the API made must have a job behind it for the workers.
    const [queued, submitted] = await Promise.all([
      system.agentQueue.getJobCountByTypes('wait', 'prioritized'),
      system.store.stats.counters().then((c) => c.submitted),
    ]);
    const per = (ms: number, n: number) => round(ms / Math.max(1, n), 3);
    return {
      api: {
        acceptedPerSec,
        rawAddPerSec,
        ratio: round(acceptedPerSec / rawAddPerSec, 3),
        concurrency,
        latencyP50Ms: percentile(latency.p50, 50),
        latencyP99Ms: percentile(latency.p99, 50),
        healthzPerSec: perSecond(health['2xx'], health.finish.getTime() - health.start.getTime()),
        cpuMsPerAccepted: { api: per(cpu.api, cpu.accepted), redis: per(cpu.apiRedis, cpu.accepted) },
        cpuMsPerRawAdd: { node: per(cpu.node, cpu.added), redis: per(cpu.rawRedis, cpu.added) },
        non2xx,
        errors,
        lost: Number(submitted ?? 0) - queued,
      },
    };
  } finally {
    await system.close();
  }
}

function post(url: string, key: string, connections: number, durationS: number): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/v1/jobs`,
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: PROMPT }),
    connections,
    duration: durationS,
  });
}

let rawIds = 0;

/** `concurrency` callers adding task jobs back to back for `durationMs`. */
async function rawAdd(
  queue: Queue,
  concurrency: number,
  durationMs: number,
): Promise<{ added: number; elapsedMs: number }> {
  let added = 0;
  const started = performance.now();
  const until = started + durationMs;
  const caller = async () => {
    while (performance.now() < until) {
      const data: TaskJobData = {
        taskId: `raw-${++rawIds}`,
        request: { prompt: PROMPT },
        createdAt: new Date().toISOString(),
      };
      await queue.add(JOBS.task.name(data), data, jobOptions('task', { jobId: data.taskId }));
      added++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  return { added, elapsedMs: performance.now() - started };
}
