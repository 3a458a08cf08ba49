import { SandboxError, SandboxNotFoundError, SandboxTimeoutError, SandboxUnavailableError } from './errors.js';

interface DockerishError {
  statusCode?: number;
  code?: string;
  message?: string;
}

/** HTTP status of a dockerode error, if it has one. */
export function dockerStatus(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null ? (err as DockerishError).statusCode : undefined;
}

/**
 * Maps a dockerode failure onto the typed hierarchy: 404/409 about the container means it is
 * gone or not running (SandboxNotFoundError), socket errors mean the engine is down.
 */
export function toSandboxError(err: unknown, what: string): SandboxError {
  if (err instanceof SandboxError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as DockerishError;
  const detail = e.message ?? String(err);
  if (e.statusCode === 404 || (e.statusCode === 409 && /not running|is paused|removal|restarting/i.test(detail))) {
    return new SandboxNotFoundError(`${what}: container is gone or not running (${detail.trim()})`, { cause: err });
  }
  if (e.code === 'ETIMEDOUT' || /timeout/i.test(detail)) {
    return new SandboxTimeoutError(`${what}: Docker did not answer in time (${detail.trim()})`, { cause: err });
  }
  return new SandboxUnavailableError(`${what}: ${detail.trim()}`, { cause: err });
}

/** Docker engine reachability errors (socket missing, refused, no permission). */
export function isEngineDown(err: unknown): boolean {
  const code = (err as DockerishError | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EACCES' || code === 'ECONNRESET' || code === 'EPIPE';
}
