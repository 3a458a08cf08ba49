/**
 * Where a task's data lives in Redis. Internal to the store: every part reads and writes its own
 * keys (or its own fields of the record hash) through methods, and only the lifecycle, which
 * sets the retention of everything a finished task keeps, needs the whole list.
 *
 * Every key starts with the queue prefix, so with a hash-tagged prefix (`{research}`) a task's
 * keys and the queues share one Redis Cluster slot, and a script may touch several of them.
 */
/** What a task keeps besides its record, each at `<record>:<part>`; a finished task keeps them all as long. */
const PARTS = ['steps', 'outcomes', 'events', 'files', 'counted', 'web', 'inputs', 'webhooks'] as const;
type Part = (typeof PARTS)[number];

export class TaskKeys {
  constructor(readonly prefix: string) {}

  /** The record hash: status, request, times, progress, result, error, checkpoint, file list, slot, cancel flag. */
  record(id: string): string {
    return `${this.prefix}:task:${id}`;
  }
  /** Step records (what the API shows), by step index. */
  readonly steps = this.#part('steps');
  /** Outcomes of finished steps, by step index: a re-delivered or resumed step is answered from here. */
  readonly outcomes = this.#part('outcomes');
  /** The event stream (SSE). */
  readonly events = this.#part('events');
  /** The kept files' bytes. */
  readonly files = this.#part('files');
  /** Indexes of the steps already counted in the task's usage (so a step is counted once). */
  readonly counted = this.#part('counted');
  /** The web budget's counters (fetches, bytes), shared by every worker running the task's steps. */
  readonly web = this.#part('web');
  /** Input files of the submit, until the worker has placed them in the task directory. */
  readonly inputs = this.#part('inputs');
  /** Webhook deliveries and their attempts, by delivery id. */
  readonly webhooks = this.#part('webhooks');
  /** Sorted set: tasks whose final status is set and whose webhook delivery may not be queued yet (score: ms). */
  webhookOutbox(): string {
    return `${this.prefix}:webhook-outbox`;
  }
  /** With per-task sandboxes: the task a slot (container and volume) was given to, for garbage collection. */
  slotTask(slot: string): string {
    return `${this.prefix}:sandbox-slot:${slot}`;
  }
  /** Everything a task keeps, for the retention of a finished one; the record first. */
  all(id: string): string[] {
    return [this.record(id), ...PARTS.map((part) => this.#part(part)(id))];
  }

  #part(part: Part): (id: string) => string {
    return (id) => `${this.record(id)}:${part}`;
  }
}

/** Records of unfinished tasks expire too, in case a task is lost beyond recovery. */
export const UNFINISHED_TTL_S = 30 * 86_400;

/** Events kept per task; older ones are trimmed (approximately) so Redis stays bounded. */
export const EVENTS_MAX_LEN = 5_000;
