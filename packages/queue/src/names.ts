/** The queue every research task goes through. */
export const AGENT_QUEUE = 'agent';

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

/** Our own keys share the queue prefix, so with a hash-tagged prefix they live in the same Cluster slot as the queues. */
export class Keys {
  constructor(readonly prefix: string) {}
  task(id: string) {
    return `${this.prefix}:task:${id}`;
  }
  taskSteps(id: string) {
    return `${this.prefix}:task:${id}:steps`;
  }
  /** Outcomes of a task's finished steps, by step index: a re-delivered step is answered from here. */
  taskOutcomes(id: string) {
    return `${this.prefix}:task:${id}:outcomes`;
  }
  taskEvents(id: string) {
    return `${this.prefix}:task:${id}:events`;
  }
  taskFiles(id: string) {
    return `${this.prefix}:task:${id}:files`;
  }
  idempotency(hash: string) {
    return `${this.prefix}:idem:${hash}`;
  }
  stats() {
    return `${this.prefix}:stats`;
  }
  workers() {
    return `${this.prefix}:workers`;
  }
  worker(id: string) {
    return `${this.prefix}:worker:${id}`;
  }
  /** Names of the step queues in Redis (a set: SCAN cannot list a Cluster's keys in one call). */
  stepQueues() {
    return `${this.prefix}:step-queues`;
  }
  cancelChannel() {
    return `${this.prefix}:cancel`;
  }
}
