import { Queue } from 'bullmq';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import {
  AGENT_QUEUE,
  WEBHOOK_QUEUE,
  isStepQueue,
  queueOptions,
  type Redis,
  type TaskStore,
  type WorkerRegistry,
} from '@research/queue';
import { formatForBoard, formatProgress } from './format.js';
import { TaskQueueAdapter } from './tenants.js';

/** The part of Bull Board's `createBullBoard()` result this module drives. */
export interface BoardQueues {
  replaceQueues(adapters: ReadonlyArray<BullMQAdapter>): void;
}

export interface QueueCatalogOptions {
  connection: Redis;
  prefix: string;
  registry: WorkerRegistry;
  /** Task records: the agent queue's jobs are shown with their tenant. */
  store: TaskStore;
  /** Adapters hide every write action (retry, clean, remove, add). Default: false. */
  readOnly?: boolean;
}

/** Always on the board, in this order, before the step queues. */
const FIXED = [AGENT_QUEUE, WEBHOOK_QUEUE];

const DESCRIPTIONS: Record<string, string> = {
  [AGENT_QUEUE]: 'Research tasks: one job per task (named with its tenant), its steps are the children',
  [WEBHOOK_QUEUE]: 'Webhook deliveries: one job per delivery, each attempt in its log (destinations shown by origin)',
};

/**
 * A webhook URL's path and query often are its credential (a chat service's hook URL, a
 * `?token=`): the board shows where a delivery goes, not how to call it.
 */
export function webhookDataForBoard(data: unknown): unknown {
  if (data === null || typeof data !== 'object' || !('url' in data) || typeof data.url !== 'string') return data;
  let origin = '[invalid URL]';
  try {
    origin = `${new URL(data.url).origin}/…`;
  } catch {}
  return { ...data, url: origin };
}

/**
 * The board's queues: `agent`, `webhooks` and every `steps.<workerId>` queue in Redis. Queues and
 * adapters are kept across refreshes, so the board is only told when the set changes and a
 * vanished worker's queue is closed.
 */
export class QueueCatalog {
  private readonly open = new Map<string, { queue: Queue; adapter: BullMQAdapter }>();

  constructor(private readonly options: QueueCatalogOptions) {
    for (const name of FIXED) this.ensure(name);
  }

  /** Adapters in board order: the agent and webhook queues first, then step queues by name. */
  adapters(): BullMQAdapter[] {
    const rank = (name: string) => (FIXED.includes(name) ? FIXED.indexOf(name) : FIXED.length);
    return [...this.open.entries()]
      .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
      .map(([, v]) => v.adapter);
  }

  names(): string[] {
    return [...this.open.keys()].sort();
  }

  /** Re-reads the step queues from Redis; returns whether the set changed. */
  async refresh(board: BoardQueues): Promise<boolean> {
    const wanted = new Set([...FIXED, ...(await this.options.registry.stepQueues()).filter(isStepQueue)]);
    let changed = false;
    for (const name of wanted) {
      if (!this.open.has(name)) {
        this.ensure(name);
        changed = true;
      }
    }
    const gone = [...this.open.keys()].filter((name) => !wanted.has(name));
    if (gone.length > 0 || changed) board.replaceQueues(this.adapters().filter((a) => !gone.includes(a.getName())));
    for (const name of gone) {
      const entry = this.open.get(name);
      this.open.delete(name);
      await entry?.queue.close().catch(() => undefined);
    }
    return changed || gone.length > 0;
  }

  async close(): Promise<void> {
    const entries = [...this.open.values()];
    this.open.clear();
    await Promise.all(entries.map((e) => e.queue.close().catch(() => undefined)));
  }

  private ensure(name: string): void {
    if (this.open.has(name)) return;
    const queue = new Queue(name, queueOptions(this.options.connection, this.options.prefix));
    // A shared connection's errors are the connection owner's to log; an unhandled 'error'
    // event on the queue would crash the process.
    queue.on('error', () => undefined);
    const agent = name === AGENT_QUEUE;
    const options = {
      readOnlyMode: this.options.readOnly ?? false,
      // A step is retried by its task (which re-dispatches it), never by hand from the board.
      allowRetries: FIXED.includes(name) && !(this.options.readOnly ?? false),
      description:
        DESCRIPTIONS[name] ??
        `Steps of worker ${name.slice('steps.'.length)}: one job per tool call, run in that worker's sandbox`,
    };
    const adapter = agent
      ? new TaskQueueAdapter(queue, options, this.options.store)
      : new BullMQAdapter(queue, options);
    const shown = name === WEBHOOK_QUEUE ? webhookDataForBoard : (data: unknown) => data;
    adapter.setFormatter('data', (data: unknown) => formatForBoard(shown(data)));
    adapter.setFormatter('returnValue', (value: unknown) => formatForBoard(value));
    adapter.setFormatter('progress', (progress: unknown) => formatProgress(progress));
    this.open.set(name, { queue, adapter });
  }
}
