import type { Redis } from '../connection.js';
import { LuaScript } from './lua.js';

/** Upper bounds (seconds) of the step duration histogram. */
export const STEP_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The stats hash. For this package's parts that count inside their own transactions and scripts. */
export function statsKey(prefix: string): string {
  return `${prefix}:stats`;
}

/**
 * Totals per tenant (`<tenant>|<name>` fields: submitted, completed, failed, cancelled, and the
 * usage fields), counted in the same scripts and transactions as the changes they count.
 */
export function tenantStatsKey(prefix: string): string {
  return `${prefix}:stats:tenants`;
}

/** The histogram bucket field of one step duration, and the duration in seconds (the sum's share). */
export function stepDurationFields(durationMs: number): { bucket: string; seconds: number } {
  const seconds = durationMs / 1000;
  const le = STEP_BUCKETS_S.find((b) => seconds <= b);
  return { bucket: le === undefined ? 'step_b_inf' : `step_b_${le}`, seconds };
}

/**
 * Lua that counts one step duration into the stats hash `stats`, its bucket field and seconds
 * given as the Lua expressions `bucket` and `seconds` (see `stepDurationFields`): one bucket per
 * observation (made cumulative when read), plus count and sum. The one writer of the histogram,
 * in its own script and inside a step's completion.
 */
export function stepDurationLua(stats: string, bucket: string, seconds: string): string {
  return `redis.call('HINCRBY', ${stats}, ${bucket}, 1)
redis.call('HINCRBY', ${stats}, 'step_count', 1)
redis.call('HINCRBYFLOAT', ${stats}, 'step_sum_s', ${seconds})`;
}

/** KEYS: stats. ARGV: the duration's bucket, its seconds (see `stepDurationFields`). */
const RECORD_STEP_DURATION = new LuaScript<null>(
  'researchRecordStepDuration',
  stepDurationLua('KEYS[1]', 'ARGV[1]', 'ARGV[2]'),
);

export interface StepHistogram {
  /** Cumulative counts per upper bound (seconds), as Prometheus wants them. */
  buckets: { le: number; count: number }[];
  count: number;
  sumSeconds: number;
}

/**
 * Totals across every process (submitted, completed, failed, cancelled, containerRestarts, …)
 * and the step duration histogram, in one hash, so the API's /metrics covers every worker.
 */
export class TaskStats {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async increment(name: string, by = 1): Promise<void> {
    await this.redis.hincrby(statsKey(this.prefix), name, by);
  }

  async recordStepDuration(durationMs: number): Promise<void> {
    const { bucket, seconds } = stepDurationFields(durationMs);
    await RECORD_STEP_DURATION.run(this.redis, [statsKey(this.prefix)], [bucket, seconds]);
  }

  async stepHistogram(): Promise<StepHistogram> {
    const h = await this.redis.hgetall(statsKey(this.prefix));
    let cumulative = 0;
    return {
      buckets: STEP_BUCKETS_S.map((le) => {
        cumulative += Number(h[`step_b_${le}`] ?? 0);
        return { le, count: cumulative };
      }),
      count: Number(h.step_count ?? 0),
      sumSeconds: Number(h.step_sum_s ?? 0),
    };
  }

  /** Totals per tenant since the store began: submitted, completed, failed, cancelled, modelCalls, …. */
  async tenantCounters(): Promise<Map<string, Record<string, number>>> {
    const h = await this.redis.hgetall(tenantStatsKey(this.prefix));
    const out = new Map<string, Record<string, number>>();
    for (const [field, value] of Object.entries(h)) {
      const bar = field.lastIndexOf('|');
      if (bar <= 0) continue;
      const tenant = field.slice(0, bar);
      const counters = out.get(tenant) ?? {};
      counters[field.slice(bar + 1)] = Number(value);
      out.set(tenant, counters);
    }
    return out;
  }

  /** Totals since the store began: submitted, completed, failed, cancelled, containerRestarts, …. */
  async counters(): Promise<Record<string, number>> {
    const h = await this.redis.hgetall(statsKey(this.prefix));
    return Object.fromEntries(
      Object.entries(h)
        .filter(([k]) => !k.startsWith('step_'))
        .map(([k, v]) => [k, Number(v)]),
    );
  }
}
