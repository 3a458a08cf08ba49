import type { Redis } from './connection.js';
import { Queue } from 'bullmq';
import { queueOptions } from './catalog.js';
import { stepQueueName } from './names.js';

/**
 * The registry's keys (package-internal: the WORKER_ID claim lives beside them); like every key of
 * ours they share the queue prefix (one Cluster slot).
 */
export class WorkerKeys {
  constructor(readonly prefix: string) {}
  /** Sorted set: worker id → last beat (ms). */
  workers() {
    return `${this.prefix}:workers`;
  }
  worker(id: string) {
    return `${this.prefix}:worker:${id}`;
  }
  /** Who holds WORKER_ID `id` (see WorkerIdClaim). */
  claim(id: string) {
    return `${this.prefix}:worker:${id}:claim`;
  }
  /** Names of the step queues in Redis (a set: SCAN cannot list a Cluster's keys in one call). */
  stepQueues() {
    return `${this.prefix}:step-queues`;
  }
}

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: string;
  containerId?: string;
  containerName?: string;
  image?: string;
  /** Task ids running now. */
  running: string[];
  lastSeen: number;
  stepQueue: string;
}

/** Live workers: each beats into a sorted set (score = last beat, ms); silent ones are reaped. */
export class WorkerRegistry {
  private readonly keys: WorkerKeys;
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.keys = new WorkerKeys(prefix);
  }

  async beat(info: Omit<WorkerInfo, 'lastSeen' | 'stepQueue'>, ttlMs: number): Promise<void> {
    const now = Date.now();
    const record: WorkerInfo = { ...info, lastSeen: now, stepQueue: stepQueueName(info.id) };
    await this.redis
      .multi()
      .zadd(this.keys.workers(), now, info.id)
      .set(this.keys.worker(info.id), JSON.stringify(record), 'PX', ttlMs)
      .sadd(this.keys.stepQueues(), record.stepQueue)
      .exec();
  }

  async remove(id: string): Promise<void> {
    await this.redis.multi().zrem(this.keys.workers(), id).del(this.keys.worker(id)).exec();
  }

  /** Workers that beat within `staleMs`. */
  async alive(staleMs: number): Promise<WorkerInfo[]> {
    const ids = await this.redis.zrangebyscore(this.keys.workers(), Date.now() - staleMs, '+inf');
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.worker(id)));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as WorkerInfo);
  }

  /** When worker `id` last beat (ms), or undefined when it is not registered (stopped, or reaped). */
  async lastBeat(id: string): Promise<number | undefined> {
    const score = await this.redis.zscore(this.keys.workers(), id);
    return score === null ? undefined : Number(score);
  }

  /**
   * Whether worker `id` is alive: it holds its WORKER_ID claim (renewed with every beat), or beat
   * within `staleMs`. Garbage collection keeps everything of a live worker.
   */
  async isLive(id: string, staleMs: number): Promise<boolean> {
    const [claimed, beat] = await Promise.all([this.redis.exists(this.keys.claim(id)), this.lastBeat(id)]);
    return claimed === 1 || (beat !== undefined && Date.now() - beat < staleMs);
  }

  /** Ids of workers whose last beat is older than `staleMs`. */
  async stale(staleMs: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.workers(), '-inf', `(${Date.now() - staleMs}`);
  }

  /**
   * Every step queue that exists in Redis, dead workers' included. A worker lists its queue with
   * each beat and only reaping, which deletes the queue, unlists it: no SCAN, which on a Redis
   * Cluster would see the keys of one node only.
   */
  async stepQueues(): Promise<string[]> {
    const [listed, ids] = await Promise.all([
      this.redis.smembers(this.keys.stepQueues()),
      this.redis.zrange(this.keys.workers(), 0, -1),
    ]);
    return [...new Set([...listed, ...ids.map(stepQueueName)])].sort();
  }

  /**
   * Removes a dead worker: its unprocessed step jobs are removed one by one (which also drops
   * them from their task's dependencies, so no task waits on them), then its queue is deleted.
   * Returns false when some job was still locked (retry later).
   */
  async reap(id: string, connection: Redis): Promise<boolean> {
    const queue = new Queue(stepQueueName(id), queueOptions(connection, this.prefix));
    try {
      const jobs = await queue.getJobs(['waiting', 'delayed', 'prioritized', 'active', 'waiting-children'], 0, -1);
      let locked = false;
      for (const job of jobs) {
        try {
          await job.remove();
        } catch {
          locked = true;
        }
      }
      if (locked) return false;
      await queue.obliterate({ force: true });
      await this.redis
        .multi()
        .zrem(this.keys.workers(), id)
        .del(this.keys.worker(id))
        .srem(this.keys.stepQueues(), stepQueueName(id))
        .exec();
      return true;
    } finally {
      await queue.close();
    }
  }
}

/**
 * Judges whether other workers are dead, for the reaper and for a worker taking a task over.
 *
 * A beat is a timestamp, and a Redis outage silences every worker at once: right after it, a live
 * worker looks as stale as a dead one until it beats again. Treating it as dead would remove the
 * step jobs it is still running, and they would run a second time elsewhere. So nobody is judged
 * dead until this process has itself been connected for `staleMs` without a break: a live worker
 * has beaten by then.
 */
export class DeathWatch {
  private connectedSince = Date.now();
  private readonly onReady = () => {
    this.connectedSince = Date.now();
  };

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly connection: Redis,
    readonly staleMs: number,
  ) {
    connection.on('ready', this.onReady);
  }

  /** Whether this process has watched long enough to tell a silent worker from a dead one. */
  canJudge(): boolean {
    return this.connection.status === 'ready' && Date.now() - this.connectedSince >= this.staleMs;
  }

  /** Whether worker `id` is dead: unregistered, or silent for `staleMs` while this process watched. */
  async isDead(id: string): Promise<boolean> {
    if (!this.canJudge()) return false;
    const last = await this.registry.lastBeat(id);
    return last === undefined || Date.now() - last >= this.staleMs;
  }

  /** Registered workers that are dead (see isDead); none while this process cannot judge yet. */
  async dead(): Promise<string[]> {
    if (!this.canJudge()) return [];
    return this.registry.stale(this.staleMs);
  }

  close(): void {
    this.connection.off('ready', this.onReady);
  }
}
