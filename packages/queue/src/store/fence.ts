import type { Redis } from '../connection.js';
import { LuaScript } from './lua.js';

/**
 * Who may write a task's checkpoint and dispatch its steps: the holder of the task job's lock.
 * A run that lost the lock (its worker stalled, or Redis was away longer than the lock) may not
 * have noticed yet; its writes are refused, so it cannot overwrite the checkpoint of the task's
 * next owner or dispatch a step beside it.
 */
export interface TaskFence {
  /** The task job's lock key (see `jobLockKey`). */
  lockKey: string;
  /** The lock token of the run that writes. */
  token: string;
}

/**
 * KEYS: the lock, the hash. ARGV: token, field, value, ttl in seconds ('' for none). The checkpoint
 * goes through here after every turn and step: as a LuaScript it is sent by its SHA, not its text.
 */
const FENCED_HSET = new LuaScript<number>(
  'researchFencedHset',
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return 1`,
);

/** Sets one field of a hash only while `fence` holds the lock; false (nothing written) when it does not. */
export async function fencedHset(
  redis: Redis,
  fence: TaskFence,
  key: string,
  field: string,
  value: string,
  ttlSeconds?: number,
): Promise<boolean> {
  const ttl = ttlSeconds === undefined ? '' : String(ttlSeconds);
  return (await FENCED_HSET.run(redis, [fence.lockKey, key], [fence.token, field, value, ttl])) === 1;
}
