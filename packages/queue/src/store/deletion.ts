import { DEFAULT_TENANT } from '@research/config';
import { FINAL_STATUSES, type TaskStatus } from '@research/contracts';
import type { Redis } from '../connection.js';
import { idempotencyKey } from './idempotency.js';
import { LuaScript, WORDS_LUA } from './lua.js';
import { INDEX_LUA, type TaskIndex } from './task-index.js';
import type { TaskKeys } from './task-keys.js';

/** The outcome of a deletion: done (with the worker that ran the task last), or refused. */
export type Deletion =
  | { deleted: true; status: TaskStatus /** Holds the task's workspace, if it ever ran. */; workerId?: string }
  | { deleted: false /** Undefined: no such task. */; status: TaskStatus | undefined };

/**
 * KEYS: everything the task keeps (the record first). ARGV: final statuses (space separated),
 * index base, idempotency key prefix, the task id, the default tenant. A task that is not final
 * is left alone; the check and the deletion are one script, so it cannot start meanwhile.
 */
const DELETE = new LuaScript<[number, string, string]>(
  'researchDeleteTask',
  `${INDEX_LUA}${WORDS_LUA}
local h = redis.call('HMGET', KEYS[1], 'status', 'tenant', 'pos', 'tags', 'idem', 'workerId')
local status = h[1]
if not status then return {0, ''} end
if not has_word(ARGV[1], status) then return {0, status} end
if h[3] then index_remove(ARGV[2], h[2] or ARGV[5], h[3], status, cjson.decode(h[4] or '[]')) end
if h[5] then
  local key = ARGV[3] .. h[5]
  local named = redis.call('GET', key)
  if named and string.sub(named, 1, #ARGV[4] + 1) == ARGV[4] .. '|' then redis.call('DEL', key) end
end
redis.call('DEL', unpack(KEYS))
return {1, status, h[6] or ''}`,
);

/**
 * Deleting a finished task: its record, steps, outcomes, events, kept files, usage marks, index
 * entries and the idempotency key that names it, in one script. Its jobs and its workspace are
 * the caller's to remove (they live in BullMQ and in a worker's sandbox).
 */
export class TaskDeletion {
  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
    private readonly index: TaskIndex,
  ) {}

  async remove(id: string): Promise<Deletion> {
    const keys = this.keys.all(id);
    const [done, status, workerId] = await DELETE.run(this.redis, keys, [
      FINAL_STATUSES.join(' '),
      this.index.base,
      idempotencyKey(this.keys.prefix, ''),
      id,
      DEFAULT_TENANT,
    ]);
    if (done !== 1) return { deleted: false, status: status === '' ? undefined : (status as TaskStatus) };
    return workerId
      ? { deleted: true, status: status as TaskStatus, workerId }
      : { deleted: true, status: status as TaskStatus };
  }
}
