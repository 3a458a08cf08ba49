import type { Redis } from '../connection.js';
import type { TaskKeys } from './task-keys.js';

const FIELD = 'sandboxSlot';

/**
 * With per-task sandboxes: the slot (container and volume) holding each task's workspace,
 * recorded with the task so a worker that resumes it finds its container and files.
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
    await this.redis.hset(this.keys.record(id), FIELD, slot);
  }
}
