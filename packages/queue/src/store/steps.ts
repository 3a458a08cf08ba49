import type { StepView } from '@research/contracts';
import type { Redis } from '../connection.js';
import { fencedHset, type TaskFence } from './fence.js';
import { addStepDuration } from './stats.js';
import { UNFINISHED_TTL_S, type TaskKeys } from './task-keys.js';

export interface StoredStep extends StepView {
  /** Step queue the step job was added to (the worker that owned the task then). */
  queue?: string;
}

/** A task's step records (what the API shows) and the outcomes of its finished steps. */
export class StepRecords {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  /**
   * Plain commands, not a MULTI: they go out at once, in order, ahead of anything sent after them
   * on this connection (the dispatcher relies on that to record a step before adding its job).
   */
  async set(id: string, step: StoredStep): Promise<void> {
    await Promise.all([
      this.redis.hset(this.keys.steps(id), String(step.index), JSON.stringify(step)),
      this.redis.expire(this.keys.steps(id), UNFINISHED_TTL_S),
    ]);
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
   * Records a finished step together with its outcome, in one transaction. Whatever delivers the
   * step again later — a step job re-queued after its lock expired (Redis was away), a task
   * resumed on another worker — is answered from this record instead of running it twice.
   */
  async complete(id: string, step: StoredStep, outcome: unknown): Promise<void> {
    const m = this.redis
      .multi()
      .hset(this.keys.steps(id), String(step.index), JSON.stringify(step))
      .hset(this.keys.outcomes(id), String(step.index), JSON.stringify(outcome))
      .expire(this.keys.steps(id), UNFINISHED_TTL_S)
      .expire(this.keys.outcomes(id), UNFINISHED_TTL_S);
    // The duration goes into the histogram in the same round trip.
    if (step.durationMs !== undefined) addStepDuration(m, this.keys.prefix, step.durationMs);
    await m.exec();
  }

  /**
   * Drops a step's recorded outcome once its job completed (the job's return value holds it from
   * then on): outcomes can be large (a read-file up to 1 MiB), so they are not kept twice.
   */
  async forgetOutcome(id: string, index: number): Promise<void> {
    await this.redis.hdel(this.keys.outcomes(id), String(index));
  }

  /** The recorded outcome of a finished step (see `complete`), unparsed. */
  async outcome(id: string, index: number): Promise<unknown> {
    const raw = await this.redis.hget(this.keys.outcomes(id), String(index));
    return raw === null ? undefined : (JSON.parse(raw) as unknown);
  }
}
