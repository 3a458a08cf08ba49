export { createRedis, duplicateRedis, isCluster, waitForRedis, API_COMMAND_TIMEOUT_MS } from './connection.js';
export { connectionUsable, failedForRedis, isRedisUnavailable } from './redis-unavailable.js';
export type { ConnectionRole, CreateRedisOptions, Redis } from './connection.js';
export {
  AGENT_QUEUE,
  EXPIRY_QUEUE,
  WEBHOOK_QUEUE,
  stepQueueName,
  stepQueueOwner,
  isStepQueue,
  stepJobId,
} from './names.js';
export {
  TaskJobData,
  ExpiryJobData,
  StepJobData,
  StepJobResult,
  WebhookJobData,
  stepJobResult,
  JOBS,
  jobOptions,
  taskJobOptions,
  bullmqPriority,
  fairTagOf,
  FAIR_TAG_SPAN,
  isExpired,
  expiryMessage,
  workerOptions,
  queueOptions,
  QUEUE_EVENTS_MAX_LEN,
} from './catalog.js';
export type { JobKind } from './catalog.js';
export { isRetryable, asJobError, isFinalFailure } from './retry.js';
export type { RetryPolicy } from './retry.js';
export { TaskStore } from './task-store.js';
export type { TaskStoreOptions } from './task-store.js';
export { STEP_BUCKETS_S } from './store/stats.js';
export type { TaskStats, StepHistogram } from './store/stats.js';
export { TRANSITIONS } from './store/lifecycle.js';
export type { TaskLifecycle, NewTask, CreatedTask, StatusDetails, Transition } from './store/lifecycle.js';
export type { TaskRecords } from './store/records.js';
export { isIndexPosition } from './store/task-index.js';
export type { TaskIndex, IndexQuery, IndexPage, IndexedTask } from './store/task-index.js';
export { USAGE_DAY_TTL_S, emptyUsage, stepUsageOf } from './store/usage.js';
export type { UsageRecords, StepUsage, UsageSums } from './store/usage.js';
export type { TaskDeletion, Deletion } from './store/deletion.js';
export type { WorkspaceCleanups } from './store/workspace-cleanup.js';
export type { StepRecords, StoredStep } from './store/steps.js';
export type { TaskEvents } from './store/events.js';
export type { TaskWebhooks, WebhookRetry } from './store/webhooks.js';
export type { TaskFiles, StoredFile, ListedFile } from './store/files.js';
export type { Idempotency, IdempotencyClaim } from './store/idempotency.js';
export type { SandboxSlots } from './store/slots.js';
export type { TaskInputs } from './store/inputs.js';
export type { WebBudgets, WebCounter } from './store/web-budget.js';
export type { CancelRequests } from './store/cancel.js';
export { QueuedQuota } from './store/queued-quota.js';
export type { Admission } from './store/queued-quota.js';
export { FairShare } from './store/fair-share.js';
export { totalBytes } from './store/footprint.js';
export type { Footprint } from './store/footprint.js';
export type { Entry, FairShareOptions } from './store/fair-share.js';
export type { TaskFence } from './store/fence.js';
export { jobLockKey, taskFence, MAX_JOB_PRIORITY } from './bullmq-internals.js';
export { DeathWatch, WorkerKeys, WorkerRegistry } from './workers.js';
export { stepLogLine, parseStepLogLine } from './step-log.js';
export type { WorkerInfo } from './workers.js';
export { WorkerIdClaim, WorkerIdTakenError } from './worker-id.js';
export type { ClaimRenewal, WorkerIdClaimOptions, WorkerIdHolder } from './worker-id.js';
