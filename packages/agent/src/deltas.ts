import type { TaskEvent } from '@research/contracts';
import type { ModelDelta } from './provider.js';

export interface DeltaThrottleOptions {
  /** One `model_delta` event per part at most this often; what comes between is joined. Default: 250. */
  intervalMs?: number;
  /** Characters of deltas sent per turn; past it one last event says so. Default: 65_536. */
  maxChars?: number;
}

/**
 * Turns a streamed answer's deltas (one per token, often) into a few `model_delta` events: at
 * most one per part every `intervalMs`, `maxChars` per turn. The turn's whole answer follows
 * as it always did (`assistant_message`, `tool_call`); these only show it early, so their cost
 * is bounded whatever the model writes. `close()` sends what is left and waits for every event.
 */
export class DeltaThrottle {
  readonly #intervalMs: number;
  readonly #maxChars: number;
  readonly #pending = new Map<ModelDelta['part'], string>();
  #taken = 0;
  #capped = false;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly turn: number,
    private readonly emit: (event: TaskEvent) => Promise<void>,
    options: DeltaThrottleOptions = {},
  ) {
    this.#intervalMs = options.intervalMs ?? 250;
    this.#maxChars = options.maxChars ?? 64 * 1024;
  }

  readonly push = (delta: ModelDelta): void => {
    if (this.#capped || delta.chunk === '') return;
    const room = this.#maxChars - this.#taken;
    const chunk = delta.chunk.slice(0, room);
    this.#taken += chunk.length;
    if (chunk.length < delta.chunk.length) this.#capped = true;
    this.#pending.set(delta.part, (this.#pending.get(delta.part) ?? '') + chunk);
    this.#timer ??= setTimeout(() => this.#flush(), this.#intervalMs);
  };

  #flush(truncated = false): void {
    this.#timer = undefined;
    const at = new Date().toISOString();
    const events: TaskEvent[] = [...this.#pending].map(([part, chunk]) => ({
      type: 'model_delta',
      at,
      turn: this.turn,
      part,
      chunk,
    }));
    this.#pending.clear();
    if (truncated)
      events.push({
        type: 'model_delta',
        at,
        turn: this.turn,
        part: 'text',
        chunk: `\n[… streaming stops at ${this.#maxChars} characters; the answer follows whole]`,
        truncated: true,
      });
    for (const event of events) this.#chain = this.#chain.then(() => this.emit(event));
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#flush(this.#capped);
    await this.#chain;
  }
}
