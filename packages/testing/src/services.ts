import net from 'node:net';
import Docker from 'dockerode';
import { createRedis, waitForRedis } from '@research/queue';

/** The Redis tests use: `REDIS_URL`, default the local one. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Fails fast, saying what to start, when Redis is not there. */
export async function requireRedis(url = REDIS_URL): Promise<void> {
  const probe = createRedis(url, 'api', { lazyConnect: false, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await waitForRedis(probe, url, 3_000);
  } catch {
    throw new Error(`Redis not reachable at ${url} — start redis-server (or set REDIS_URL)`);
  } finally {
    probe.disconnect();
  }
}

/** Fails fast, saying what to start, when Redis or the Docker engine is missing. */
export async function requireServices(redisUrl = REDIS_URL): Promise<void> {
  await requireRedis(redisUrl);
  try {
    await new Docker().ping();
  } catch {
    throw new Error('Docker engine not reachable at /var/run/docker.sock — start dockerd');
  }
}

/** A loopback port nothing listens on (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `check` every `everyMs` until it gives a value, failing after `timeoutMs` with `what`.
 * An error `check` throws ends the wait at once (a process it watches has died).
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** {@link eventually} for a yes/no check. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<void> {
  await eventually(what, async () => ((await check()) ? true : undefined), timeoutMs, everyMs);
}
