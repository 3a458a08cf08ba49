import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { ConfigError, type Env, loadConfig } from '@research/config';
import type { Redis } from '@research/queue';
import type { GcItem } from '@research/sandbox';
import { type Connection, EXIT } from './args.js';
import type { Io } from './commands.js';

/** `research gc`: an operator's command, run where the Docker engine of the workers is. */
export interface GcCommand {
  name: 'gc';
  dryRun: boolean;
  minAgeMs: number;
  json: boolean;
  /** Unused (gc talks to Redis and Docker, not the API); every command carries one. */
  conn: Connection;
}

function minutes(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected whole minutes (0 or more).');
  return Number(value);
}

/** Adds the options and description of `gc` to its subcommand; `set` receives the parsed command. */
export function registerGc(cmd: Command, set: (command: Omit<GcCommand, 'conn'>, cmd: Command) => void): void {
  cmd
    .description(
      'remove sandbox containers and per-task volumes of workers long dead (uses REDIS_URL, QUEUE_PREFIX and the local Docker engine)',
    )
    .option('--dry-run', 'list what would be removed and remove nothing', false)
    .option('--min-age <minutes>', 'keep objects made, or of workers last seen, less than this long ago', minutes, 60)
    .option('--json', 'print {removed, kept} as JSON', false)
    .action((o: { dryRun: boolean; minAge: number; json: boolean }, c: Command) => {
      set({ name: 'gc', dryRun: o.dryRun, minAgeMs: o.minAge * 60_000, json: o.json }, c);
    });
}

/**
 * Runs `research gc`. Liveness comes from the worker registry in Redis (a beat within six
 * heartbeats, or a held WORKER_ID claim), as the workers' own reaper judges it. Right after a
 * Redis restart every worker looks silent until its next beat, so gc refuses to judge until
 * Redis has been up for that long.
 */
export async function runGc(
  command: GcCommand,
  io: Io,
  source: Record<string, string | undefined> = process.env,
): Promise<number> {
  let env: Env;
  try {
    env = loadConfig([], source);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`research gc: ${err.message}\n`);
    return EXIT.usage;
  }
  // Loaded here, not with the CLI: the API commands need neither BullMQ nor a Docker client.
  const { createRedis, TaskStore, WorkerRegistry, waitForRedis } = await import('@research/queue');
  const { collectGarbage } = await import('@research/sandbox');
  const redis = createRedis(env.REDIS_URL, 'api', { cluster: env.REDIS_CLUSTER });
  redis.on('error', () => undefined);
  try {
    try {
      await waitForRedis(redis, env.REDIS_URL, 5_000);
    } catch (err) {
      io.stderr.write(`research gc: ${(err as Error).message}\n`);
      return EXIT.unreachable;
    }
    const staleMs = env.WORKER_HEARTBEAT_MS * 6;
    const upMs = await uptimeMs(redis);
    if (upMs < staleMs) {
      io.stderr.write(
        `research gc: Redis started ${Math.round(upMs / 1_000)} s ago, so live workers may not have beaten since; run it again in ${Math.ceil((staleMs - upMs) / 1_000)} s\n`,
      );
      return EXIT.failed;
    }
    const registry = new WorkerRegistry(redis, env.QUEUE_PREFIX);
    const store = new TaskStore(redis, env.QUEUE_PREFIX);
    const result = await collectGarbage({
      queuePrefix: env.QUEUE_PREFIX,
      isLive: (id) => registry.isLive(id, staleMs),
      lastSeen: (id) => registry.lastBeat(id),
      slotInUse: (slot) => store.slots.inUse(slot),
      minAgeMs: command.minAgeMs,
      dryRun: command.dryRun,
    });
    if (command.json) {
      io.stdout.write(`${JSON.stringify({ dryRun: command.dryRun, ...result })}\n`);
      return EXIT.ok;
    }
    const verb = command.dryRun ? 'would remove' : 'removed';
    for (const item of result.removed) io.stdout.write(`${verb} ${line(item)}\n`);
    io.stderr.write(
      `${result.removed.length} ${command.dryRun ? 'to remove' : 'removed'}, ${result.kept.length} kept (prefix ${env.QUEUE_PREFIX})\n`,
    );
    return EXIT.ok;
  } catch (err) {
    io.stderr.write(`research gc: ${(err as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

function line(item: GcItem): string {
  return `${item.kind} ${item.name} (owner ${item.owner}: ${item.reason})`;
}

async function uptimeMs(redis: Redis): Promise<number> {
  const info = await redis.info('server');
  const seconds = Number(/uptime_in_seconds:(\d+)/.exec(info)?.[1] ?? 'NaN');
  // Unknown (a proxy that hides INFO): judge anyway, as the reaper's own watch would after a while.
  return Number.isNaN(seconds) ? Number.POSITIVE_INFINITY : seconds * 1_000;
}
