import {
  StepView,
  type TaskError,
  type TaskProgress,
  TaskRequest,
  TaskResult,
  type TaskStatus,
  TaskView,
} from '@research/contracts';
import type { Redis } from '../connection.js';
import { fencedHset, type TaskFence } from './fence.js';
import type { StepRecords } from './steps.js';
import type { TaskKeys } from './task-keys.js';
import { UsageRecords } from './usage.js';

const CHECKPOINT_FIELD = 'checkpoint';

/** A task's record as people and a resuming worker read it: the view, the request, progress, the checkpoint. */
export class TaskRecords {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
    private readonly steps: StepRecords,
  ) {}

  async exists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.record(id))) === 1;
  }

  /** The tenant recorded at creation; undefined for no task and for a record made without one. */
  async tenant(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.record(id), 'tenant')) ?? undefined;
  }

  async request(id: string): Promise<TaskRequest | undefined> {
    const raw = await this.redis.hget(this.keys.record(id), 'request');
    return raw ? TaskRequest.parse(JSON.parse(raw)) : undefined;
  }

  /** What `GET /v1/jobs/:id` shows. */
  async view(id: string): Promise<TaskView | undefined> {
    const [h, steps] = await Promise.all([this.redis.hgetall(this.keys.record(id)), this.steps.all(id)]);
    if (!h.id || !h.request || !h.status || !h.createdAt) return undefined;
    const request = JSON.parse(h.request) as TaskRequest;
    const view: TaskView = {
      id: h.id,
      status: h.status as TaskStatus,
      prompt: request.prompt,
      createdAt: h.createdAt,
      progress: h.progress ? (JSON.parse(h.progress) as TaskProgress) : { step: 0, maxSteps: 1, phase: 'queued' },
      steps: steps.map(({ queue: _queue, ...v }) => StepView.parse(v)),
      tags: request.tags ?? [],
      usage: UsageRecords.fromRecord(h),
    };
    if (h.startedAt) view.startedAt = h.startedAt;
    if (h.finishedAt) view.finishedAt = h.finishedAt;
    if (h.workerId) view.workerId = h.workerId;
    if (h.result) view.result = TaskResult.parse(JSON.parse(h.result));
    if (h.error) view.error = JSON.parse(h.error) as TaskError;
    if (request.metadata) view.metadata = request.metadata;
    return TaskView.parse(view);
  }

  async setProgress(id: string, progress: TaskProgress): Promise<void> {
    await this.redis.hset(this.keys.record(id), 'progress', JSON.stringify(progress));
  }

  /** Saves the checkpoint only while `fence` holds the task's lock; false when it does not. */
  async saveCheckpoint(id: string, state: unknown, fence: TaskFence): Promise<boolean> {
    return fencedHset(this.redis, fence, this.keys.record(id), CHECKPOINT_FIELD, JSON.stringify(state));
  }

  async checkpoint<T>(id: string): Promise<T | undefined> {
    const raw = await this.redis.hget(this.keys.record(id), CHECKPOINT_FIELD);
    return raw ? (JSON.parse(raw) as T) : undefined;
  }
}
