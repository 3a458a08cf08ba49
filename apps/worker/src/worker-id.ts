import os from 'node:os';
import type { Env, Logger } from '@research/config';
import { WorkerIdClaim, createRedis, waitForRedis, type Redis } from '@research/queue';

export interface WorkerIdHold {
  /** Stops renewing and frees the id. Call it after the worker has closed (its container is gone or stopped). */
  release(): Promise<void>;
}

export interface HoldWorkerIdOptions {
  env: Env;
  logger: Logger;
  /** Another process took the id after this one's claim lapsed. Default: exit 1 at once (see below). */
  onLost?: () => void;
}

/**
 * Claims `WORKER_ID` for this process before anything uses it, and keeps the claim for the
 * process's life: renewed with every heartbeat, lapsing three heartbeats after the process died.
 * Throws WorkerIdTakenError (from @research/queue) when a live worker holds the id.
 *
 * A claim is lost only when it lapsed (Redis unreachable, or the process stalled, for longer than
 * three beats) and another process took the id meanwhile. By default that exits at once, without
 * the graceful close: closing would stop or remove the sandbox container, which the new holder now
 * uses. This process's tasks resume elsewhere from their checkpoints, as after a crash.
 */
export async function holdWorkerId({ env, logger, onLost }: HoldWorkerIdOptions): Promise<WorkerIdHold> {
  const connection: Redis = createRedis(env.REDIS_URL, 'worker', { cluster: env.REDIS_CLUSTER });
  connection.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error (worker id claim)'));
  const ttlMs = env.WORKER_HEARTBEAT_MS * 3;
  let claim: WorkerIdClaim;
  try {
    await waitForRedis(connection, env.REDIS_URL, 10_000);
    claim = await WorkerIdClaim.acquire(connection, env.QUEUE_PREFIX, env.WORKER_ID, {
      host: os.hostname(),
      pid: process.pid,
      ttlMs,
    });
  } catch (err) {
    connection.disconnect();
    throw err;
  }
  const lost =
    onLost ??
    (() => {
      process.exit(1);
    });

  let renewing = false;
  const renew = async () => {
    if (renewing || connection.status !== 'ready') return;
    renewing = true;
    try {
      const result = await claim.renew();
      if (result === 'reclaimed')
        logger.warn({ workerId: env.WORKER_ID }, 'the WORKER_ID claim had lapsed; re-took it');
      if (result === 'lost') {
        const holder = await claim.currentHolder().catch(() => undefined);
        logger.fatal(
          { workerId: env.WORKER_ID, holder },
          `WORKER_ID=${env.WORKER_ID} was taken by another worker (host ${holder?.host ?? '?'}, pid ${holder?.pid ?? '?'}) while this one could not renew its claim; exiting so the two do not share a container and a step queue`,
        );
        lost();
      }
    } finally {
      renewing = false;
    }
  };
  const renewNow = () =>
    void renew().catch((err: unknown) => logger.warn({ err }, 'could not renew the WORKER_ID claim'));
  const timer = setInterval(renewNow, env.WORKER_HEARTBEAT_MS);
  connection.on('ready', renewNow);

  return {
    async release() {
      clearInterval(timer);
      connection.off('ready', renewNow);
      // With Redis away the release would queue for ever; the claim lapses by its TTL instead.
      const gaveUp = new Promise<void>((r) => setTimeout(r, 2_000).unref());
      await Promise.race([
        claim.release().catch((err: unknown) => logger.warn({ err }, 'could not release the WORKER_ID claim')),
        gaveUp,
      ]);
      connection.disconnect();
    },
  };
}
