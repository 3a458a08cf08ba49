import { FINAL_STATUSES, type TaskStatus } from '@research/contracts';
import type { Redis } from '../connection.js';
import { type TaskKeys, UNFINISHED_TTL_S } from './task-keys.js';

const FIELD = 'sandboxSlot';

/**
 * With per-task sandboxes: the slot (container and volume) holding each task's workspace,
 * recorded with the task so a worker that resumes it finds its container and files; and the
 * other way round, so garbage collection keeps a slot whose task is not over, whichever worker
 * made it (a resumed task runs in the slot its dead worker labelled).
 */
export class SandboxSlots {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  async get(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.record(id), FIELD)) ?? undefined;
  }

  async set(id: string, slot: string): Promise<void> {
    await this.redis
      .multi()
      .hset(this.keys.record(id), FIELD, slot)
      // As long as an unfinished task's record lives at most.
      .set(this.keys.slotTask(slot), id, 'EX', UNFINISHED_TTL_S)
      .exec();
  }

  /** Whether the slot was given to a task that is not over (queued, running, or waiting to resume). */
  async inUse(slot: string): Promise<boolean> {
    const task = await this.redis.get(this.keys.slotTask(slot));
    if (task === null) return false;
    const status = (await this.redis.hget(this.keys.record(task), 'status')) as TaskStatus | null;
    return status !== null && !FINAL_STATUSES.includes(status);
  }
}
