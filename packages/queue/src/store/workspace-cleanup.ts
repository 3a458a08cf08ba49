import type { Redis } from '../connection.js';
import type { TaskKeys } from './task-keys.js';

/** A worker that never comes back leaves its requests this long (its volume's own retention clears the files). */
const PENDING_TTL_S = 7 * 86_400;

/**
 * Requests to remove deleted tasks' workspaces, addressed to the worker that ran each task last:
 * its sandbox holds the files (another host's workers cannot reach them). The request is kept in
 * a per-worker set, so a worker that is down (or restarting under the same `WORKER_ID`) acts on
 * it when it comes back, and announced on one channel every worker listens to, so a live one
 * acts at once.
 */
export class WorkspaceCleanups {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  private channel(): string {
    return `${this.keys.prefix}:workspace-cleanup`;
  }

  private pendingKey(workerId: string): string {
    return `${this.keys.prefix}:cleanup:${workerId}`;
  }

  /** Asks worker `workerId` to remove task `taskId`'s workspace. */
  async request(workerId: string, taskId: string): Promise<void> {
    const key = this.pendingKey(workerId);
    await this.redis.multi().sadd(key, taskId).expire(key, PENDING_TTL_S).publish(this.channel(), workerId).exec();
  }

  /** Puts back requests that were taken but not carried out, without announcing them again. */
  async keep(workerId: string, taskIds: string[]): Promise<void> {
    if (taskIds.length === 0) return;
    const key = this.pendingKey(workerId);
    await this.redis
      .multi()
      .sadd(key, ...taskIds)
      .expire(key, PENDING_TTL_S)
      .exec();
  }

  /** Takes up to `count` of the requests addressed to `workerId` (each is taken once). */
  async take(workerId: string, count = 100): Promise<string[]> {
    return this.redis.spop(this.pendingKey(workerId), count);
  }

  /** Requests still waiting for `workerId`. */
  async pending(workerId: string): Promise<string[]> {
    return this.redis.smembers(this.pendingKey(workerId));
  }

  /**
   * Calls `onRequest` whenever requests for `workerId` arrive. `subscriber` becomes (or already
   * is) a subscriber connection.
   */
  async subscribe(subscriber: Redis, workerId: string, onRequest: () => void): Promise<void> {
    const channel = this.channel();
    subscriber.on('message', (from: string, to: string) => {
      if (from === channel && to === workerId) onRequest();
    });
    await subscriber.subscribe(channel);
  }
}
