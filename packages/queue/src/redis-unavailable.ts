import { Cluster, ReplyError, type Redis as Standalone } from 'ioredis';
import type { Redis } from './connection.js';

/**
 * Redis's own error codes (the first word of a RESP error reply) that say the server cannot
 * serve now but may later: out of memory under `noeviction`, still loading its data, a replica
 * without its master or read-only, a Cluster slot moving or down.
 */
const UNAVAILABLE_REPLY_CODES = new Set(['OOM', 'LOADING', 'MASTERDOWN', 'READONLY', 'CLUSTERDOWN', 'TRYAGAIN']);

/** Socket errors (Node's `code`) of a connection that broke or never came up. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTCONN']);

/**
 * ioredis's error classes for a request given up on: `MaxRetriesPerRequestError` (an
 * `AbortError`) after a connection loss, `ClusterAllFailedError` when no Cluster node answers
 * for the slots. Matched by the class's name: ioredis does not export them from its entry point.
 */
const GIVEN_UP_ERRORS = new Set(['MaxRetriesPerRequestError', 'AbortError', 'ClusterAllFailedError']);

/**
 * Whether `err` says Redis is unreachable or cannot serve for now (the caller may retry later),
 * decided by the error's type: Redis's reply code, the socket's errno code, ioredis's class.
 * ioredis raises a few failures as plain `Error`s (the connection closed, an offline queue
 * refused, a command timed out); those are told by the connection's state, see
 * `failedForRedis`.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof ReplyError) return UNAVAILABLE_REPLY_CODES.has(err.message.split(' ', 1)[0] ?? '');
  if (GIVEN_UP_ERRORS.has(err.name)) return true;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && SOCKET_CODES.has(code);
}

/**
 * Whether the connection can take a command now: it is `ready` and its socket is still
 * writable. Between a socket's end and ioredis's `close` handling the status still says `ready`
 * while commands are refused with a plain Error. In a Cluster, the nodes that are connected are
 * checked (ioredis connects to the others when a command first needs them).
 */
export function connectionUsable(redis: Redis): boolean {
  if (redis.status !== 'ready') return false;
  if (redis instanceof Cluster) return redis.nodes().every((node) => node.status !== 'ready' || socketWritable(node));
  return socketWritable(redis);
}

function socketWritable(redis: Standalone): boolean {
  return redis.stream?.writable !== false;
}

/**
 * Whether a request that failed with `err` after `elapsedMs` failed because of Redis: an error
 * of Redis's kind, or any failure while the connection cannot take commands, or one that took the
 * connection's whole command timeout (ioredis rejects a timed-out command with a plain Error).
 */
export function failedForRedis(err: unknown, redis: Redis, elapsedMs: number, commandTimeoutMs: number): boolean {
  return isRedisUnavailable(err) || !connectionUsable(redis) || elapsedMs >= commandTimeoutMs;
}
