import { randomUUID } from 'node:crypto';
import type { Redis } from './connection.js';
import { WorkerKeys, WorkerRegistry } from './workers.js';

/** Who holds a worker id, as its claim records it. */
export interface WorkerIdHolder {
  host: string;
  pid: number;
  /** When the holder claimed the id (ISO time). */
  claimedAt: string;
  /** When the holder last beat into the registry (ms since the epoch); undefined before its first beat. */
  lastBeat?: number;
}

/** Another live worker holds this WORKER_ID; starting a second one would share its container and step queue. */
export class WorkerIdTakenError extends Error {
  override readonly name = 'WorkerIdTakenError';
  constructor(
    readonly workerId: string,
    readonly holder: WorkerIdHolder,
    now = Date.now(),
  ) {
    const seen =
      holder.lastBeat === undefined
        ? `no beat yet, claimed ${seconds(now - Date.parse(holder.claimedAt))} ago`
        : `last beat ${seconds(now - holder.lastBeat)} ago`;
    super(
      `WORKER_ID=${workerId} is held by a live worker (host ${holder.host}, pid ${holder.pid}, ${seen}); ` +
        'give every worker its own WORKER_ID, or leave it unset for a unique default',
    );
  }
}

function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1_000).toFixed(1)} s`;
}

export interface WorkerIdClaimOptions {
  /** Host recorded with the claim. */
  host: string;
  /** Process id recorded with the claim. */
  pid: number;
  /**
   * How long the claim lives without a renewal. Renew it more often than that: the worker
   * renews with every heartbeat and uses three heartbeats, so one late renewal does not free it.
   */
  ttlMs: number;
  /** A registry beat of the id younger than this is a holder that may be alive. Default: `ttlMs`. */
  liveMs?: number;
  /**
   * How long a start watches a held id before it gives up: a dead holder's claim lapses and its
   * beats stop within `ttlMs`, a live one beats again or renews its claim. Default: `ttlMs` × 4/3.
   */
  judgeMs?: number;
  /** How often the watch looks. Default: `ttlMs` / 15, within 50–500 ms. */
  pollMs?: number;
}

// The value is compared whole, so a claim is only ever renewed or removed by the process that made it.
const RENEW = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** What a renewal found: still ours, ours again after it had lapsed, or taken by another process. */
export type ClaimRenewal = 'held' | 'reclaimed' | 'lost';

/**
 * A worker's exclusive hold on its WORKER_ID: one key set with NX, so of two processes starting
 * at once with one id exactly one gets it, and a TTL, so the id frees itself a few heartbeats
 * after its holder died without releasing it. A worker id names a step queue and a sandbox
 * container; two live workers on one id run each other's steps and remove each other's runner.
 *
 * A held id is not refused at first sight: a worker killed with -9 and restarted under the same id
 * by its supervisor (systemd, a pod's container restart) finds its own lapsing claim and beat.
 * The start watches instead: a holder that beats again, or whose claim outlives its TTL, is alive
 * and the start is refused; one whose claim lapses while its beat goes stale was dead, and the id
 * is taken. So a refusal takes at most about `judgeMs`, and a restart waits at most that long.
 */
export class WorkerIdClaim {
  private constructor(
    private readonly redis: Redis,
    readonly key: string,
    readonly workerId: string,
    private readonly value: string,
    private readonly ttlMs: number,
  ) {}

  /** Claims `workerId`, or throws WorkerIdTakenError naming the live holder. */
  static async acquire(
    redis: Redis,
    prefix: string,
    workerId: string,
    options: WorkerIdClaimOptions,
  ): Promise<WorkerIdClaim> {
    const registry = new WorkerRegistry(redis, prefix);
    const key = new WorkerKeys(prefix).claim(workerId);
    const value = JSON.stringify({
      host: options.host,
      pid: options.pid,
      claimedAt: new Date().toISOString(),
      token: randomUUID(),
    } satisfies WorkerIdHolder & { token: string });
    const liveMs = options.liveMs ?? options.ttlMs;
    const pollMs = options.pollMs ?? Math.min(500, Math.max(50, Math.round(options.ttlMs / 15)));
    const deadline = Date.now() + (options.judgeMs ?? Math.round((options.ttlMs * 4) / 3));
    let firstBeat: number | undefined;
    for (let look = 0; ; look += 1) {
      const claimed = (await redis.set(key, value, 'PX', options.ttlMs, 'NX')) === 'OK';
      const beat = await registry.lastBeat(workerId);
      const recent = beat !== undefined && Date.now() - beat < liveMs;
      if (claimed && !recent) return new WorkerIdClaim(redis, key, workerId, value, options.ttlMs);
      // A recent beat without a claim: a worker whose claim lapsed while it kept running, or a dead
      // one whose last beat is not stale yet. Neither is ours to take before the watch tells which.
      if (claimed) await redis.eval(RELEASE, 1, key, value);
      if (look === 0) firstBeat = beat;
      const beatAgain = beat !== undefined && beat !== firstBeat;
      if (beatAgain || Date.now() >= deadline)
        throw new WorkerIdTakenError(workerId, await describeHolder(redis, registry, key, workerId, beat));
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Extends the claim; re-takes it when it lapsed (Redis was away for longer than its TTL). */
  async renew(): Promise<ClaimRenewal> {
    const r = await this.redis.eval(RENEW, 1, this.key, this.value, this.ttlMs);
    return r === 1 ? 'held' : r === 2 ? 'reclaimed' : 'lost';
  }

  /** Frees the id, unless another process holds it by now. */
  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.value);
  }

  /** Whoever holds the id now (after a renewal found it lost); undefined when nobody does. */
  async currentHolder(): Promise<WorkerIdHolder | undefined> {
    const raw = await this.redis.get(this.key);
    return raw === null ? undefined : parseHolder(raw);
  }
}

async function describeHolder(
  redis: Redis,
  registry: WorkerRegistry,
  key: string,
  workerId: string,
  lastBeat: number | undefined,
): Promise<WorkerIdHolder> {
  const raw = await redis.get(key);
  const beatInfo = lastBeat === undefined ? {} : { lastBeat };
  if (raw !== null) return { ...parseHolder(raw), ...beatInfo };
  // No claim: the holder is known from its registry record only.
  const record = (await registry.alive(Number.MAX_SAFE_INTEGER)).find((w) => w.id === workerId);
  return {
    host: record?.host ?? 'unknown',
    pid: record?.pid ?? -1,
    claimedAt: record?.startedAt ?? new Date(0).toISOString(),
    ...beatInfo,
  };
}

function parseHolder(raw: string): WorkerIdHolder {
  try {
    const v = JSON.parse(raw) as Partial<WorkerIdHolder>;
    return {
      host: typeof v.host === 'string' ? v.host : 'unknown',
      pid: typeof v.pid === 'number' ? v.pid : -1,
      claimedAt: typeof v.claimedAt === 'string' ? v.claimedAt : new Date(0).toISOString(),
    };
  } catch {
    return { host: 'unknown', pid: -1, claimedAt: new Date(0).toISOString() };
  }
}
