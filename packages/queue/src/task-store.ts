import type { Redis } from './connection.js';
import { CancelRequests } from './store/cancel.js';
import { TaskDeletion } from './store/deletion.js';
import { TaskEvents } from './store/events.js';
import { TaskFiles } from './store/files.js';
import { TaskFootprint } from './store/footprint.js';
import { Idempotency } from './store/idempotency.js';
import { TaskInputs } from './store/inputs.js';
import { TaskLifecycle } from './store/lifecycle.js';
import { TaskRecords } from './store/records.js';
import { SandboxSlots } from './store/slots.js';
import { TaskStats } from './store/stats.js';
import { StepRecords } from './store/steps.js';
import { TaskIndex } from './store/task-index.js';
import { TaskKeys, UNFINISHED_TTL_S } from './store/task-keys.js';
import { UsageRecords } from './store/usage.js';
import { WorkspaceCleanups } from './store/workspace-cleanup.js';
import { WebBudgets } from './store/web-budget.js';
import { TaskWebhooks, type WebhookRetry } from './store/webhooks.js';

export interface TaskStoreOptions {
  /** How long a finished task's record, events and files are kept. Default: 7 days. */
  retentionSeconds?: number;
  /** How webhook deliveries queued by this store retry. Default: the job catalog's. */
  webhookRetry?: WebhookRetry;
  /** The connection the webhook queue is opened on (see queueOptions). Default: the store's own. */
  queueConnection?: Redis;
}

/**
 * Everything kept about tasks in Redis, one part per concern. Each part owns its keys (or its
 * fields of the task's record hash); callers go through the parts' methods, never the keys.
 */
export class TaskStore {
  /** Creation and status changes, each with its `status` event. */
  readonly lifecycle: TaskLifecycle;
  /** The view, the request, progress and the checkpoint. */
  readonly records: TaskRecords;
  /** Step records and the outcomes of finished steps. */
  readonly steps: StepRecords;
  /** The event stream. */
  readonly events: TaskEvents;
  /** Kept files. */
  readonly files: TaskFiles;
  /** Idempotency keys. */
  readonly idempotency: Idempotency;
  /** Per-task sandbox slots. */
  readonly slots: SandboxSlots;
  /** Cancel requests: the flag and the channel. */
  readonly cancels: CancelRequests;
  /** Counters and the step duration histogram. */
  readonly stats: TaskStats;
  /** The list of tasks by tenant, status and tag. */
  readonly index: TaskIndex;
  /** What tasks use, per task and per tenant and day. */
  readonly usage: UsageRecords;
  /** Deleting a finished task. */
  readonly deletion: TaskDeletion;
  /** Requests to remove deleted tasks' workspaces. */
  readonly workspaces: WorkspaceCleanups;
  /** What each task keeps in Redis (TASK_MAX_REDIS_BYTES). */
  readonly footprint: TaskFootprint;
  /** Input files of a submit, until placed in the task directory. */
  readonly inputs: TaskInputs;
  /** Per-task web budget counters. */
  readonly web: WebBudgets;
  /** Webhook deliveries and their attempts. */
  readonly webhooks: TaskWebhooks;

  constructor(redis: Redis, prefix: string, options: TaskStoreOptions = {}) {
    const keys = new TaskKeys(prefix);
    const retentionSeconds = options.retentionSeconds ?? 7 * 86_400;
    this.idempotency = new Idempotency(redis, prefix);
    // An index set outlives every record in it: unfinished ones and finished ones alike.
    this.index = new TaskIndex(redis, keys, Math.max(UNFINISHED_TTL_S, retentionSeconds) + 86_400);
    this.events = new TaskEvents(redis, keys);
    this.webhooks = new TaskWebhooks(
      redis,
      keys,
      this.events,
      retentionSeconds,
      options.webhookRetry,
      options.queueConnection,
    );
    this.steps = new StepRecords(redis, keys, this.webhooks);
    this.lifecycle = new TaskLifecycle(redis, keys, this.idempotency, this.index, retentionSeconds, this.webhooks);
    this.records = new TaskRecords(redis, keys, this.steps);
    this.files = new TaskFiles(redis, keys);
    this.slots = new SandboxSlots(redis, keys);
    this.cancels = new CancelRequests(redis, keys);
    this.stats = new TaskStats(redis, prefix);
    this.usage = new UsageRecords(redis, keys);
    this.deletion = new TaskDeletion(redis, keys, this.index);
    this.workspaces = new WorkspaceCleanups(redis, keys);
    this.footprint = new TaskFootprint(redis, keys);
    this.inputs = new TaskInputs(redis, keys);
    this.web = new WebBudgets(redis, keys);
  }

  /** Closes what the store opened itself (the webhook queue); the connection stays the caller's. */
  async close(): Promise<void> {
    await this.webhooks.close();
  }
}
