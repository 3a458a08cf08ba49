export { createRedis, duplicateRedis, isCluster, waitForRedis, API_COMMAND_TIMEOUT_MS } from './connection.js';
export type { ConnectionRole, CreateRedisOptions, Redis } from './connection.js';
export { AGENT_QUEUE, stepQueueName, stepQueueOwner, isStepQueue, stepJobId, Keys } from './names.js';
export { TaskJobData, StepJobData, JOBS, jobOptions, queueOptions, QUEUE_EVENTS_MAX_LEN } from './catalog.js';
export type { JobKind } from './catalog.js';
export { TaskStore, STEP_BUCKETS_S } from './task-store.js';
export type { TaskStoreOptions, TaskFence, StoredStep, StoredFile } from './task-store.js';
export { DeathWatch, WorkerRegistry } from './workers.js';
export type { WorkerInfo } from './workers.js';
