import type { Redis } from '../connection.js';
import { UNFINISHED_TTL_S, type TaskKeys } from './task-keys.js';

/** What `@research/web`'s TaskWebBudget counts with (its `BudgetCounter`): one atomic add. */
export interface WebCounter {
  /** Adds `by` (may be 0) to `name` and returns the new total. */
  increment(name: string, by: number): Promise<number>;
}

/**
 * A task's web budget counters (fetches, bytes), in one hash under the task's keys: every worker
 * that runs one of its steps counts into it, and it expires with the task.
 */
export class WebBudgets {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  /** The counters of task `id`. */
  counter(id: string): WebCounter {
    const key = this.keys.web(id);
    return {
      increment: async (name, by) => {
        const [[err, total] = [null, 0]] =
          (await this.redis.multi().hincrby(key, name, by).expire(key, UNFINISHED_TTL_S).exec()) ?? [];
        if (err) throw err;
        return Number(total);
      },
    };
  }

  /** The counters' values, by name (what the task has used). */
  async used(id: string): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.keys.web(id));
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }
}
