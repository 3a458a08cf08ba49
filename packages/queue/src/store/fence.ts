import { createHash } from 'node:crypto';
import type { Redis } from '../connection.js';

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

/** KEYS: the lock, the hash. ARGV: token, field, value, ttl in seconds ('' for none). */
const FENCED_HSET = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return 1`;
const FENCED_HSET_SHA = createHash('sha1').update(FENCED_HSET).digest('hex');

/** Sets one field of a hash only while `fence` holds the lock; false (nothing written) when it does not. */
export async function fencedHset(
  redis: Redis,
  fence: TaskFence,
  key: string,
  field: string,
  value: string,
  ttlSeconds?: number,
): Promise<boolean> {
  const args = [
    2,
    fence.lockKey,
    key,
    fence.token,
    field,
    value,
    ttlSeconds === undefined ? '' : String(ttlSeconds),
  ] as const;
  // By its SHA: the checkpoint goes through here after every turn and step, and EVAL sent the
  // script's text with each one. A Redis that has not seen it yet (or was restarted) gets it once.
  const done = await redis.evalsha(FENCED_HSET_SHA, ...args).catch((err: unknown) => {
    if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return redis.eval(FENCED_HSET, ...args);
    throw err;
  });
  return done === 1;
}
