import { DEFAULT_TENANT } from '@research/config';
import { type StepOutcome, type TaskUsage, USAGE_FIELDS } from '@research/contracts';
import type { Redis } from '../connection.js';
import { LuaScript } from './lua.js';
import { tenantStatsKey } from './stats.js';
import type { TaskKeys } from './task-keys.js';

/** How long a tenant's day of usage is kept. */
export const USAGE_DAY_TTL_S = 400 * 86_400;

/** Field of the record hash that holds one usage total. */
const FIELD_PREFIX = 'u:';

/**
 * KEYS: record, counted steps, tenant stats, tenants with usage. ARGV: mode ('model' | 'step'),
 * day, day-bucket key base (the bucket is `<base><tenant>:<day>`, the tenant read from the
 * record), bucket TTL s, default tenant, then for 'model' the absolute modelCalls, promptTokens,
 * completionTokens, and for 'step' its index, commandMs, fetchedBytes. Whatever is new goes to
 * the task's totals, the tenant's day and the tenant's counters at once.
 */
const RECORD = new LuaScript<number>(
  'researchRecordUsage',
  `if redis.call('HEXISTS', KEYS[1], 'status') == 0 then return 0 end
local deltas = {}
if ARGV[1] == 'model' then
  for i, f in ipairs({'modelCalls', 'promptTokens', 'completionTokens'}) do
    local new = tonumber(ARGV[5 + i])
    local old = tonumber(redis.call('HGET', KEYS[1], 'u:' .. f) or '0')
    if new > old then deltas[#deltas + 1] = {f, new - old} end
  end
else
  if redis.call('SADD', KEYS[2], ARGV[6]) == 0 then return 0 end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  deltas = {{'steps', 1}, {'commandMs', tonumber(ARGV[7])}, {'fetchedBytes', tonumber(ARGV[8])}}
end
local tenant = redis.call('HGET', KEYS[1], 'tenant') or ARGV[5]
local day = ARGV[3] .. tenant .. ':' .. ARGV[2]
local counted = 0
for _, d in ipairs(deltas) do
  if d[2] > 0 then
    redis.call('HINCRBY', KEYS[1], 'u:' .. d[1], d[2])
    redis.call('HINCRBY', day, d[1], d[2])
    redis.call('HINCRBY', KEYS[3], tenant .. '|' .. d[1], d[2])
    counted = counted + 1
  end
end
if counted > 0 then
  redis.call('EXPIRE', day, ARGV[4])
  redis.call('SADD', KEYS[4], tenant)
  redis.call('EXPIRE', KEYS[4], ARGV[4])
end
return counted`,
);

/** What one finished step adds to its task's usage. */
export interface StepUsage {
  /** Time the step's command ran in the sandbox (0 for other actions). */
  commandMs: number;
  /** Bytes its web fetch received (0 for other actions). */
  fetchedBytes: number;
}

/** Usage summed over days. */
export interface UsageSums {
  usage: TaskUsage;
  days: { date: string; usage: TaskUsage }[];
}

/** What a finished step's outcome adds to its task's usage: a command's run time, a fetch's bytes. */
export function stepUsageOf(outcome: StepOutcome): StepUsage {
  if (!outcome.ok) return { commandMs: 0, fetchedBytes: 0 };
  const r = outcome.result;
  return {
    commandMs: r.action === 'execute-command' ? r.durationMs : 0,
    fetchedBytes: r.action === 'web-fetch' ? r.bytes : 0,
  };
}

export function emptyUsage(): TaskUsage {
  return { modelCalls: 0, promptTokens: 0, completionTokens: 0, steps: 0, commandMs: 0, fetchedBytes: 0 };
}

/**
 * What tasks use, as they run: totals in each task's record, and per tenant and UTC day in a
 * bucket under the prefix (`GET /v1/usage` sums those). Every write is idempotent, so a task
 * resumed on another worker counts nothing twice: model usage is written as the absolute totals
 * of the agent's checkpointed state (only what exceeds the recorded totals is added), and a step
 * is counted once per step index. A model call made after the last checkpoint by a worker that
 * then died is not counted. Deleting a task keeps its tenant's days: what was used stays used.
 */
export class UsageRecords {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  private dayBase(): string {
    return `${this.keys.prefix}:usage:`;
  }

  private tenantsKey(): string {
    return `${this.keys.prefix}:usage-tenants`;
  }

  private run(id: string, mode: 'model' | 'step', values: (string | number)[], at: Date): Promise<number> {
    return RECORD.run(
      this.redis,
      [this.keys.record(id), this.keys.counted(id), tenantStatsKey(this.keys.prefix), this.tenantsKey()],
      [mode, at.toISOString().slice(0, 10), this.dayBase(), USAGE_DAY_TTL_S, DEFAULT_TENANT, ...values],
    );
  }

  /** The model usage of the task so far (absolute totals, as the agent state counts them). */
  async recordModel(
    id: string,
    totals: Pick<TaskUsage, 'modelCalls' | 'promptTokens' | 'completionTokens'>,
    at = new Date(),
  ): Promise<void> {
    await this.run(
      id,
      'model',
      [totals.modelCalls, totals.promptTokens, totals.completionTokens].map((n) => Math.max(0, Math.floor(n))),
      at,
    );
  }

  /** A finished step (counted once per index, however often it is reported). */
  async recordStep(id: string, index: number, step: StepUsage, at = new Date()): Promise<void> {
    await this.run(
      id,
      'step',
      [index, Math.max(0, Math.round(step.commandMs)), Math.max(0, Math.round(step.fetchedBytes))],
      at,
    );
  }

  /** A task's usage from its record's fields (`hgetall` of the record). */
  static fromRecord(h: Record<string, string>): TaskUsage {
    const usage = emptyUsage();
    for (const f of USAGE_FIELDS) usage[f] = Number(h[`${FIELD_PREFIX}${f}`] ?? 0);
    return usage;
  }

  /** Tenants that have any usage recorded. */
  async tenants(): Promise<string[]> {
    return (await this.redis.smembers(this.tenantsKey())).sort();
  }

  /** The sums of `tenants` (all of them together) over the days `dates` (`YYYY-MM-DD`). */
  async sums(tenants: readonly string[], dates: readonly string[]): Promise<UsageSums> {
    const pipeline = this.redis.pipeline();
    for (const date of dates) for (const t of tenants) pipeline.hgetall(`${this.dayBase()}${t}:${date}`);
    const replies = (await pipeline.exec()) ?? [];
    const total = emptyUsage();
    let i = 0;
    const days = dates.map((date) => {
      const usage = emptyUsage();
      for (const _t of tenants) {
        const [err, h] = replies[i++] ?? [null, {}];
        if (err) throw err;
        for (const f of USAGE_FIELDS) usage[f] += Number((h as Record<string, string>)[f] ?? 0);
      }
      for (const f of USAGE_FIELDS) total[f] += usage[f];
      return { date, usage };
    });
    return { usage: total, days };
  }
}
