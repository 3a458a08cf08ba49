import { StepOutcome, type StepView } from '@research/contracts';
import type { Redis } from '../connection.js';
import { fencedHset, type TaskFence } from './fence.js';
import { FOOTPRINT_FIELDS } from './footprint.js';
import { LuaScript } from './lua.js';
import { statsKey, stepDurationFields, stepDurationLua } from './stats.js';
import { UNFINISHED_TTL_S, type TaskKeys } from './task-keys.js';
import type { TaskWebhooks } from './webhooks.js';

/**
 * KEYS: record, steps, outcomes, stats. ARGV: step index, step record, outcome, ttl s, the
 * duration's histogram bucket ('' for none), its seconds. Writes the finished step's record
 * and outcome, counts the outcome's bytes against TASK_MAX_REDIS_BYTES (NX keeps the retention
 * a finished record already has) and the duration into the histogram; returns the task's
 * webhook, if any.
 */
const COMPLETE = new LuaScript<string | null>(
  'researchCompleteStep',
  `local webhook = redis.call('HGET', KEYS[1], 'webhook')
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('HINCRBY', KEYS[1], '${FOOTPRINT_FIELDS.written}', #ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4], 'NX')
if ARGV[5] ~= '' then
  ${stepDurationLua('KEYS[4]', 'ARGV[5]', 'ARGV[6]')}
end
return webhook`,
);

export interface StoredStep extends StepView {
  /** Step queue the step job was added to (the worker that owned the task then). */
  queue?: string;
}

/** A task's step records (what the API shows) and the outcomes of its finished steps. */
export class StepRecords {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
    /** Queues a progress delivery for each finished step, when the task's webhook asks for them. */
    private readonly webhooks?: TaskWebhooks,
  ) {}

  /**
   * Updates the record of a dispatched step (running, failed). One command, ahead of anything
   * sent after it on this connection. The hash's retention was set when the step was dispatched
   * (`setFenced`), and `complete` sets it again.
   */
  async set(id: string, step: StoredStep): Promise<void> {
    await this.redis.hset(this.keys.steps(id), String(step.index), JSON.stringify(step));
  }

  /**
   * Records a step about to be dispatched, only while `fence` holds the task's lock. Returns
   * false (and writes nothing) when it does not: the step must not be dispatched.
   */
  async setFenced(id: string, step: StoredStep, fence: TaskFence): Promise<boolean> {
    return fencedHset(
      this.redis,
      fence,
      this.keys.steps(id),
      String(step.index),
      JSON.stringify(step),
      UNFINISHED_TTL_S,
    );
  }

  async get(id: string, index: number): Promise<StoredStep | undefined> {
    const raw = await this.redis.hget(this.keys.steps(id), String(index));
    return raw ? (JSON.parse(raw) as StoredStep) : undefined;
  }

  /** Every step record, by index order. */
  async all(id: string): Promise<StoredStep[]> {
    const steps = await this.redis.hgetall(this.keys.steps(id));
    return Object.values(steps)
      .map((raw) => JSON.parse(raw) as StoredStep)
      .sort((a, b) => a.index - b.index);
  }

  /**
   * Records a finished step together with its outcome, in one script, before its job
   * completes. This is the one copy of the outcome (the step job's return value is only a
   * summary): whatever delivers the step again later — a step job re-queued after its lock
   * expired (Redis was away), a task resumed on another worker, a dead worker's step taken over —
   * is answered from it instead of running the step twice. It lives as long as the task.
   */
  async complete(id: string, step: StoredStep, outcome: StepOutcome): Promise<void> {
    // A script, not a transaction: on a connection that sends calls in batches, a transaction
    // would go out ahead of the `set` (running) queued before it, which would then overwrite
    // this record. Scripts keep their place among the other calls.
    const duration = step.durationMs === undefined ? undefined : stepDurationFields(step.durationMs);
    const webhook = await COMPLETE.run(
      this.redis,
      [this.keys.record(id), this.keys.steps(id), this.keys.outcomes(id), statsKey(this.keys.prefix)],
      [
        String(step.index),
        JSON.stringify(step),
        JSON.stringify(outcome),
        UNFINISHED_TTL_S,
        duration?.bucket ?? '',
        duration?.seconds ?? 0,
      ],
    );
    if (webhook && this.webhooks)
      await this.webhooks.progress(id, webhook, {
        index: step.index,
        action: step.action,
        ...(step.exitCode === undefined ? {} : { exitCode: step.exitCode }),
      });
  }

  /** The recorded outcome of a finished step (see `complete`); undefined when it has none. */
  async outcome(id: string, index: number): Promise<StepOutcome | undefined> {
    const raw = await this.redis.hget(this.keys.outcomes(id), String(index));
    if (raw === null) return undefined;
    const parsed = StepOutcome.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  }
}
