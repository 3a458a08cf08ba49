import { EgressDeniedError } from './errors.js';

/**
 * Counters shared by every worker that runs a task's steps. The worker backs it with Redis
 * (`INCRBY` on a key under the task's prefix, expiring with the task); `MemoryCounter` is the
 * in-process one.
 */
export interface BudgetCounter {
  /** Adds `by` (may be 0) to `key` and returns the new total, atomically. */
  increment(key: string, by: number): Promise<number>;
}

/** A BudgetCounter in this process's memory (one worker, tests). */
export class MemoryCounter implements BudgetCounter {
  readonly #values = new Map<string, number>();

  async increment(key: string, by: number): Promise<number> {
    const next = (this.#values.get(key) ?? 0) + by;
    this.#values.set(key, next);
    return next;
  }
}

export interface TaskWebBudgetLimits {
  /** WEB_MAX_FETCHES_PER_TASK. */
  maxFetches: number;
  /** WEB_MAX_BYTES_PER_TASK. */
  maxBytes: number;
}

/**
 * What one task may still fetch. `beginFetch` counts a fetch before it starts and says how many
 * bytes it may read; `addBytes` records what it read. A fetch past either limit is refused as
 * egress_denied (rule `fetch-budget` or `byte-budget`), before any connection.
 *
 * A step that is retried counts again: the budget errs on the side of fetching less.
 */
export class TaskWebBudget {
  readonly #counter: BudgetCounter;
  readonly #keys: { fetches: string; bytes: string };
  readonly #limits: TaskWebBudgetLimits;

  /** `scope` names the task in the counter's keys (`web:<scope>:fetches`, `web:<scope>:bytes`). */
  constructor(counter: BudgetCounter, scope: string, limits: TaskWebBudgetLimits) {
    this.#counter = counter;
    this.#keys = { fetches: `web:${scope}:fetches`, bytes: `web:${scope}:bytes` };
    this.#limits = limits;
  }

  /** Counts one fetch of `url`; returns the bytes it may read (at most `maxBytes`). */
  async beginFetch(url: string, maxBytes: number): Promise<number> {
    const fetches = await this.#counter.increment(this.#keys.fetches, 1);
    if (fetches > this.#limits.maxFetches)
      throw new EgressDeniedError(
        url,
        'fetch-budget',
        `this task has used its ${this.#limits.maxFetches} fetches (WEB_MAX_FETCHES_PER_TASK)`,
      );
    const used = await this.#counter.increment(this.#keys.bytes, 0);
    const left = this.#limits.maxBytes - used;
    if (left <= 0)
      throw new EgressDeniedError(
        url,
        'byte-budget',
        `this task has fetched its ${this.#limits.maxBytes} bytes (WEB_MAX_BYTES_PER_TASK)`,
      );
    return Math.min(maxBytes, left);
  }

  /** Records bytes a fetch read. */
  async addBytes(bytes: number): Promise<void> {
    if (bytes > 0) await this.#counter.increment(this.#keys.bytes, bytes);
  }
}
