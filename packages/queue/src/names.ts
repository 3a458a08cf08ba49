/** The queue every research task goes through. */
export const AGENT_QUEUE = 'agent';

/**
 * Delayed checks of tasks with a `ttlSeconds`: each fires when its task's time to start is over
 * and fails the task as `expired` if it is still queued (see `ExpirySweeper` in the API).
 */
export const EXPIRY_QUEUE = 'expiry';

const STEP_QUEUE_PREFIX = 'steps.';

/** Each worker consumes its own step queue, so a step runs in the container of the worker that owns the task. */
export function stepQueueName(workerId: string): string {
  return `${STEP_QUEUE_PREFIX}${workerId}`;
}

export function isStepQueue(name: string): boolean {
  return name.startsWith(STEP_QUEUE_PREFIX);
}

/** The worker that consumes step queue `name` (the inverse of stepQueueName). */
export function stepQueueOwner(name: string): string {
  if (!isStepQueue(name)) throw new Error(`${name} is not a step queue`);
  return name.slice(STEP_QUEUE_PREFIX.length);
}

/** Deterministic step job id: a replay finds the finished step instead of running it again. BullMQ ids must not hold `:`. */
export function stepJobId(taskId: string, stepIndex: number): string {
  return `${taskId}-${stepIndex}`;
}
