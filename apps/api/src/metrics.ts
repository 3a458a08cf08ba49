import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import { Queue } from 'bullmq';
import { FINAL_STATUSES } from '@research/contracts';
import { AGENT_QUEUE, WorkerRegistry, queueOptions, type TaskStore } from '@research/queue';
import type { ApiDeps } from './deps.js';
import { guard } from './redis-guard.js';

/** Queue states reported as depth. */
const QUEUE_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'failed',
  'completed',
] as const;

/**
 * Step durations are observed by workers into Redis buckets (`STEP_BUCKETS_S`); this metric
 * reports those buckets rather than observations made in this process. prom-client has no
 * histogram fed from outside, so this is a minimal metric object the registry can render
 * (it reads name, help, type and `get()`).
 */
function storedStepHistogram(store: TaskStore, run: <T>(work: () => Promise<T>) => Promise<T>): Metric {
  const name = 'research_step_duration_seconds';
  const help = 'Duration of tool steps, all workers';
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    collect() {},
    reset() {},
    async get() {
      const h = await run(() => store.stats.stepHistogram());
      return {
        name,
        help,
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...h.buckets.map((b) => ({ metricName: `${name}_bucket`, labels: { le: b.le }, value: b.count })),
          { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: h.count },
          { metricName: `${name}_sum`, labels: {}, value: h.sumSeconds },
          { metricName: `${name}_count`, labels: {}, value: h.count },
        ],
      };
    },
  };
  return metric as unknown as Metric;
}

/** A counter filled afresh on each scrape: `read` what it counts (from Redis), then `fill` it from that. */
function scrapedCounter<T>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => Promise<T>,
  fill: (c: Counter<string>, value: T) => void,
): Counter<string> {
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      const value = await read();
      this.reset();
      fill(this, value);
    },
  });
}

/** The per-tenant counters that are one total each: name, help, and the value from a tenant's totals. */
const TENANT_TOTALS: readonly [name: string, help: string, value: (t: Record<string, number>) => number][] = [
  ['research_tenant_tasks_submitted_total', 'Tasks accepted by the API, by tenant', (t) => t.submitted ?? 0],
  ['research_tenant_model_calls_total', 'Model calls of tasks, by tenant', (t) => t.modelCalls ?? 0],
  ['research_tenant_steps_total', 'Finished tool steps of tasks, by tenant', (t) => t.steps ?? 0],
  [
    'research_tenant_command_seconds_total',
    'Time commands ran in sandboxes, by tenant',
    (t) => (t.commandMs ?? 0) / 1000,
  ],
  ['research_tenant_fetched_bytes_total', 'Bytes received by web fetches, by tenant', (t) => t.fetchedBytes ?? 0],
];

/**
 * Counters per tenant, from the per-tenant totals the store keeps in Redis (`TaskStats.tenantCounters`).
 * The label's values are the configured tenants, so the number of series stays bounded.
 */
function registerTenantMetrics(
  registry: Registry,
  store: TaskStore,
  run: <T>(work: () => Promise<T>) => Promise<T>,
): void {
  // One read of the totals per scrape, shared by the counters below.
  let pending: Promise<Map<string, Record<string, number>>> | undefined;
  const totals = () => {
    pending ??= run(() => store.stats.tenantCounters()).finally(() => {
      setImmediate(() => {
        pending = undefined;
      });
    });
    return pending;
  };
  const counter = (
    name: string,
    help: string,
    fill: (c: Counter<string>, tenant: string, t: Record<string, number>) => void,
    labelNames: string[] = ['tenant'],
  ) =>
    scrapedCounter(registry, name, help, labelNames, totals, (c, all) => {
      for (const [tenant, t] of all) fill(c, tenant, t);
    });
  for (const [name, help, value] of TENANT_TOTALS) counter(name, help, (c, tenant, t) => c.inc({ tenant }, value(t)));
  counter(
    'research_tenant_tasks_finished_total',
    'Tasks that reached a final status, by tenant and status',
    (c, tenant, t) => {
      for (const status of FINAL_STATUSES) c.inc({ tenant, status }, t[status] ?? 0);
    },
    ['tenant', 'status'],
  );
  counter(
    'research_tenant_tokens_total',
    'Model tokens of tasks as the provider reported them, by tenant and kind (prompt, completion)',
    (c, tenant, t) => {
      c.inc({ tenant, kind: 'prompt' }, t.promptTokens ?? 0);
      c.inc({ tenant, kind: 'completion' }, t.completionTokens ?? 0);
    },
    ['tenant', 'kind'],
  );
}

/**
 * Prometheus metrics, collected from Redis on each scrape so every API replica reports the
 * whole system. A scrape while Redis is down fails (503) rather than reporting stale zeros.
 */
export function createMetrics(deps: Pick<ApiDeps, 'env' | 'redis' | 'store' | 'queue'>): {
  registry: Registry;
  close(): Promise<void>;
} {
  const { env, redis, store, queue } = deps;
  const registry = new Registry();
  const workers = new WorkerRegistry(redis, env.QUEUE_PREFIX);
  const stepQueues = new Map<string, Queue>();
  const run = <T>(work: () => Promise<T>) => guard(redis, work);

  /** A counter from the totals the store keeps (`TaskStats.counters`). */
  const storedCounter = (
    name: string,
    help: string,
    fill: (c: Counter<string>, totals: Record<string, number>) => void,
    labelNames: string[] = [],
  ) => scrapedCounter(registry, name, help, labelNames, () => run(() => store.stats.counters()), fill);
  storedCounter('research_tasks_submitted_total', 'Tasks accepted by the API', (c, t) => c.inc(t.submitted ?? 0));
  storedCounter(
    'research_tasks_finished_total',
    'Tasks that reached a final status, by status',
    (c, t) => {
      for (const status of FINAL_STATUSES) c.inc({ status }, t[status] ?? 0);
    },
    ['status'],
  );
  new Gauge({
    name: 'research_tasks',
    help: 'Task jobs in the agent queue now, by state (queued = waiting + delayed + prioritized, running = active + waiting-children)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const c = await run(() => queue.getJobCounts(...QUEUE_STATES));
      this.reset();
      this.set({ status: 'queued' }, (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0));
      this.set({ status: 'running' }, (c.active ?? 0) + (c['waiting-children'] ?? 0));
    },
  });
  new Gauge({
    name: 'research_queue_jobs',
    help: 'Jobs per queue and state (the agent queue and the step queue of every live worker)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const alive = await run(() => workers.alive(env.WORKER_HEARTBEAT_MS * 6));
      const names = new Set(alive.map((w) => w.stepQueue));
      for (const [name, q] of stepQueues) {
        if (!names.has(name)) {
          stepQueues.delete(name);
          await q.close();
        }
      }
      const queues: Queue[] = [queue as unknown as Queue];
      for (const name of names) {
        let q = stepQueues.get(name);
        if (!q) {
          // On the agent queue's connection, not the store's (see queueOptions).
          q = new Queue(name, { ...queueOptions(redis, env.QUEUE_PREFIX), connection: queue.opts.connection });
          stepQueues.set(name, q);
        }
        queues.push(q);
      }
      const counts = await run(() => Promise.all(queues.map((q) => q.getJobCounts(...QUEUE_STATES))));
      this.reset();
      counts.forEach((c, i) => {
        for (const state of QUEUE_STATES) this.set({ queue: queues[i]?.name ?? AGENT_QUEUE, state }, c[state] ?? 0);
      });
    },
  });
  new Gauge({
    name: 'research_workers_alive',
    help: 'Workers that sent a heartbeat recently',
    registers: [registry],
    async collect() {
      this.set((await run(() => workers.alive(env.WORKER_HEARTBEAT_MS * 6))).length);
    },
  });
  storedCounter('research_container_restarts_total', 'Sandbox containers re-created or restarted by workers', (c, t) =>
    c.inc(t.containerRestarts ?? 0),
  );
  registry.registerMetric(storedStepHistogram(store, run));
  registerTenantMetrics(registry, store, run);

  return {
    registry,
    async close() {
      await Promise.allSettled([...stepQueues.values()].map((q) => q.close()));
      stepQueues.clear();
    },
  };
}
