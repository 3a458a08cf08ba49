import type { Redis } from '../connection.js';
import type { TaskKeys } from './task-keys.js';

const FIELD = 'cancelRequested';

/**
 * Cancel requests for running tasks: a flag on the task (read when a run starts) and a message
 * on one channel every worker listens to (for the run going on now).
 */
export class CancelRequests {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  private channel(): string {
    return `${this.keys.prefix}:cancel`;
  }

  /** Flags the task, then tells every worker; the worker running it aborts it. */
  async request(id: string): Promise<void> {
    await this.redis.hset(this.keys.record(id), FIELD, '1');
    await this.redis.publish(this.channel(), id);
  }

  async isRequested(id: string): Promise<boolean> {
    return (await this.redis.hget(this.keys.record(id), FIELD)) === '1';
  }

  /**
   * Calls `onCancel` with the id of every task whose cancel is requested from now on.
   * `subscriber` becomes a subscriber connection (it can send no other commands).
   */
  async subscribe(subscriber: Redis, onCancel: (taskId: string) => void): Promise<void> {
    const channel = this.channel();
    subscriber.on('message', (from: string, taskId: string) => {
      if (from === channel) onCancel(taskId);
    });
    await subscriber.subscribe(channel);
  }
}
