import autocannon from 'autocannon';
import type { Queue } from 'bullmq';
import { JOBS, jobOptions, type TaskJobData } from '@research/queue';
import { processCpuMs, redisCpuMs } from '../support/cpu.js';
import { callFor } from '../support/callers.js';
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

/** Tasks per `POST /v1/jobs/batch` request, and per raw `addBulk` in the baseline. */
const BATCH = 100;

/**
 * Intake against the real API process (no worker runs, so nothing but intake is measured):
 * - single: `POST /v1/jobs` accepted/s against `GET /healthz`/s over the same connections (the
 *   HTTP stack's own ceiling here); raw in-process `queue.add`/s is kept for continuity;
 * - batch: `POST /v1/jobs/batch` tasks accepted/s against raw in-process `addBulk` of the same
 *   jobs in the same batch size, on the same Redis (null while the API has no batch route).
 * The kinds of run alternate so that other load on the machine hits them alike.
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
    const healthRates: number[] = [];
    const bulkRates: number[] = [];
    const batchRates: number[] = [];
    let batchMissing = false;
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

      // The HTTP stack's own ceiling here: the API's cheapest route, same connections.
      const health = await autocannon({ url: `${url}/healthz`, connections: concurrency, duration: durationS });
      healthRates.push(perSecond(health['2xx'], health.finish.getTime() - health.start.getTime()));

      const bulk = await rawAdd(raw, concurrency, durationS * 1_000, BATCH);
      bulkRates.push(perSecond(bulk.added, bulk.elapsedMs));
      if (!batchMissing) {
        const batch = await postBatches(url, key, concurrency, durationS * 1_000);
        if (batch === undefined) batchMissing = true;
        else {
          batchRates.push(perSecond(batch.accepted, batch.elapsedMs));
          errors += batch.errors;
        }
      }
    }

    const rawAddPerSec = percentile(rawRates, 50);
    const acceptedPerSec = percentile(apiRates, 50);
    const healthzPerSec = percentile(healthRates, 50);
    const rawAddBulkPerSec = percentile(bulkRates, 50);
    const batchAcceptedPerSec = batchMissing ? null : percentile(batchRates, 50);
    // Every task record the API made must have a job behind it for the workers.
    const [queued, submitted] = await Promise.all([
      system.agentQueue.getJobCountByTypes('wait', 'prioritized'),
      system.store.stats.counters().then((c) => c.submitted),
    ]);
    const per = (ms: number, n: number) => round(ms / Math.max(1, n), 3);
    return {
      api: {
        acceptedPerSec,
        healthzPerSec,
        ratioVsHealthz: round(acceptedPerSec / healthzPerSec, 3),
        batchAcceptedPerSec,
        rawAddBulkPerSec,
        batchRatio: batchAcceptedPerSec === null ? null : round(batchAcceptedPerSec / rawAddBulkPerSec, 3),
        batchSize: BATCH,
        rawAddPerSec,
        ratioVsRawAdd: round(acceptedPerSec / rawAddPerSec, 3),
        concurrency,
        latencyP50Ms: percentile(latency.p50, 50),
        latencyP99Ms: percentile(latency.p99, 50),
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

function rawJob() {
  const data: TaskJobData = {
    taskId: `raw-${++rawIds}`,
    request: { prompt: PROMPT },
    createdAt: new Date().toISOString(),
  };
  return { name: JOBS.task.name(data), data, opts: jobOptions('task', { jobId: data.taskId }) };
}

/**
 * `concurrency` callers posting `BATCH` tasks per `POST /v1/jobs/batch` for `durationMs`; the
 * tasks accepted (items answered with an id). Undefined when the API has no such route (the
 * probe is refused: 404, or 400/405 from a route that takes `batch` for a task id).
 */
async function postBatches(
  url: string,
  key: string,
  concurrency: number,
  durationMs: number,
): Promise<{ accepted: number; errors: number; elapsedMs: number } | undefined> {
  const body = JSON.stringify({ tasks: Array.from({ length: BATCH }, () => ({ prompt: PROMPT })) });
  const send = () =>
    fetch(`${url}/v1/jobs/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body,
    });
  const probe = await send();
  if (!probe.ok) {
    await probe.body?.cancel();
    return undefined;
  }
  await probe.arrayBuffer();
  let accepted = 0;
  let errors = 0;
  const { elapsedMs } = await callFor(concurrency, durationMs, async () => {
    const res = await send();
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    const items = Object.values(json).find(Array.isArray) as { id?: string }[] | undefined;
    const ok = (items ?? []).filter((i) => typeof i?.id === 'string').length;
    accepted += ok;
    if (res.status >= 300 || ok < BATCH) errors++;
  });
  return { accepted, errors, elapsedMs };
}

/**
 * `concurrency` callers adding task jobs back to back for `durationMs`: one `queue.add` a call,
 * or with `batch`, that many jobs per `addBulk`.
 */
async function rawAdd(
  queue: Queue,
  concurrency: number,
  durationMs: number,
  batch?: number,
): Promise<{ added: number; elapsedMs: number }> {
  let added = 0;
  const { elapsedMs } = await callFor(concurrency, durationMs, async () => {
    if (batch === undefined) {
      const { name, data, opts } = rawJob();
      await queue.add(name, data, opts);
      added++;
    } else {
      await queue.addBulk(Array.from({ length: batch }, rawJob));
      added += batch;
    }
  });
  return { added, elapsedMs };
}
