import { InputFiles } from '@research/contracts';
import type { Redis } from '../connection.js';
import type { TaskKeys } from './task-keys.js';

/**
 * The files a submit carried, kept beside the task's record (the lifecycle writes them with the
 * record) until the worker that first runs the task has placed them in its directory. They stay
 * out of the task job's data and the record, which every view reads whole.
 */
export class TaskInputs {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
  ) {}

  /** The files still waiting to be placed; undefined when there are none (never any, or placed). */
  async load(id: string): Promise<InputFiles | undefined> {
    const raw = await this.redis.get(this.keys.inputs(id));
    return raw ? InputFiles.parse(JSON.parse(raw)) : undefined;
  }

  /** Forgets them once they are in the task directory. */
  async drop(id: string): Promise<void> {
    await this.redis.del(this.keys.inputs(id));
  }
}
