import type Dockerode from 'dockerode';
import type { Env, Logger } from '@research/config';

/** How a DockerSandbox is set up. Every field but `workerId` has a default. */
export interface DockerSandboxOptions {
  /** This worker's id: labels (`research.worker`) and names (`research-sandbox-<workerId>`) its container. */
  workerId: string;
  /** Image of new containers. Default: `research-sandbox:latest`. */
  image?: string;
  /** Named volume mounted at /workspace; created when missing. Default: `daytona-workspace`. */
  volume?: string;
  /** Docker network mode. Default: `none` — research code runs offline; nothing to exfiltrate to. */
  networkMode?: string;
  /** Memory limit; swap is set equal so nothing is added on top. Default: 1024. */
  memoryMb?: number;
  /** CPU limit (NanoCpus). Default: 1. */
  cpus?: number;
  /** Process limit of the whole container (stops fork bombs). Default: 256. */
  pids?: number;
  /** Default and maximum duration of one execute-command. Default: 120_000. */
  commandTimeoutMs?: number;
  /** stdout and stderr kept per command, each; the rest is cut with a marker. Default: 65_536. */
  maxOutputBytes?: number;
  /**
   * A running command's live output (RunOptions.onOutput) comes at most once per stream this
   * often, coalesced: about 4 a second, so a chatty command costs a few events, not one per write.
   * Default: 250.
   */
  liveOutputIntervalMs?: number;
  /**
   * Bytes of live output per command; past it one last chunk says so (the outcome has all of
   * it). A preview, kept small because it stays in the task's event stream beside the outcome:
   * a command's output is stored once, plus at most this much. 0: no live output. Default: 4_096.
   */
  liveOutputMaxBytes?: number;
  /** read-file returns at most this many bytes (`truncated: true` beyond). Default: 1_048_576. */
  maxReadBytes?: number;
  /** list-files stops after this many entries. Default: 1000. */
  listMaxEntries?: number;
  /** list-files descends at most this deep. Default: 8. */
  listMaxDepth?: number;
  /**
   * Per-task disk quota over /workspace/<taskId> (and the task's home), in MiB; 0 = none. A
   * command that takes the task past it is stopped and answered `disk_quota_exceeded`, and so
   * is a create-file that would. Default: 1024.
   */
  taskDiskMb?: number;
  /** Uid of the runner itself inside the container (no passwd entry needed). Default: 99_999. */
  runnerUid?: number;
  /**
   * First uid of the range each task gets a uid of its own from (no passwd entries needed).
   * Every container sharing a volume must use the same range. Default: 100_000.
   */
  taskUidFirst?: number;
  /** Size of that range. Under userns-remap keep first + count inside the mapping. Default: 900_000. */
  taskUidCount?: number;
  /**
   * exportFiles lists at most this many files (sorted by path; the rest is counted as omitted), so
   * the list a task keeps stays small even for 100,000 files. Default: 5_000.
   */
  exportMaxFiles?: number;
  /** exportFiles lists file names up to this many bytes in total. Default: 131_072. */
  exportMaxNameBytes?: number;
  /**
   * Capabilities kept after `CapDrop: ALL`. Default: CHOWN, DAC_OVERRIDE, FOWNER (the root set-up
   * step that hands /workspace to the runner), KILL, SETGID, SETUID, SETPCAP (the runner: see
   * README, "Capabilities"). Commands hold none of them, in any set.
   */
  capAdd?: string[];
  /**
   * The deployment's queue prefix (QUEUE_PREFIX), labelled `research.prefix` on every container and
   * volume, so garbage collection never touches another deployment's objects on a shared engine.
   * Default: `{research}`.
   */
  queuePrefix?: string;
  /** Extra container labels; the contract labels cannot be overridden. Default: none. */
  labels?: Record<string, string>;
  /**
   * Run actions through the long-lived in-container runner (needs python3 in the image). When
   * false, or when the runner cannot start, every action is a per-call exec (~45 ms each).
   * Default: true.
   */
  useRunner?: boolean;
  /** Bound on one Docker API call and on the runner's start. Default: 30_000. */
  dockerTimeoutMs?: number;
  /** Docker client. Default: `new Dockerode()` (DOCKER_HOST or /var/run/docker.sock). */
  docker?: Dockerode;
  /** Logger. Default: silent. */
  logger?: Logger;
}

export type ResolvedOptions = Required<Omit<DockerSandboxOptions, 'docker' | 'logger'>>;

export const DEFAULTS = {
  image: 'research-sandbox:latest',
  volume: 'daytona-workspace',
  networkMode: 'none',
  memoryMb: 1024,
  cpus: 1,
  pids: 256,
  commandTimeoutMs: 120_000,
  maxOutputBytes: 64 * 1024,
  liveOutputIntervalMs: 250,
  liveOutputMaxBytes: 4 * 1024,
  maxReadBytes: 1024 * 1024,
  listMaxEntries: 1000,
  listMaxDepth: 8,
  taskDiskMb: 1024,
  runnerUid: 99_999,
  taskUidFirst: 100_000,
  taskUidCount: 900_000,
  exportMaxFiles: 5_000,
  exportMaxNameBytes: 128 * 1024,
  capAdd: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID', 'SETPCAP'],
  queuePrefix: '{research}',
  labels: {},
  useRunner: true,
  dockerTimeoutMs: 30_000,
} as const satisfies Omit<ResolvedOptions, 'workerId'>;

export function resolveOptions(options: DockerSandboxOptions): ResolvedOptions {
  const { docker: _docker, logger: _logger, ...rest } = options;
  const defined = Object.fromEntries(
    Object.entries(rest).filter(([, v]) => v !== undefined),
  ) as Partial<ResolvedOptions>;
  const merged: ResolvedOptions = {
    ...DEFAULTS,
    capAdd: [...DEFAULTS.capAdd],
    labels: {},
    workerId: options.workerId,
    ...defined,
  };
  return { ...merged, capAdd: [...merged.capAdd], labels: { ...merged.labels } };
}

/** DockerSandbox options from the parsed environment (SANDBOX_* and WORKER_ID). */
export function sandboxOptionsFromEnv(env: Env, logger?: Logger): DockerSandboxOptions {
  return {
    workerId: env.WORKER_ID,
    queuePrefix: env.QUEUE_PREFIX,
    image: env.SANDBOX_IMAGE,
    volume: env.SANDBOX_VOLUME,
    networkMode: env.SANDBOX_NETWORK,
    memoryMb: env.SANDBOX_MEMORY_MB,
    cpus: env.SANDBOX_CPUS,
    pids: env.SANDBOX_PIDS,
    commandTimeoutMs: env.SANDBOX_COMMAND_TIMEOUT_MS,
    maxOutputBytes: env.SANDBOX_MAX_OUTPUT_BYTES,
    liveOutputMaxBytes: env.SANDBOX_LIVE_OUTPUT_BYTES,
    taskDiskMb: env.SANDBOX_TASK_DISK_MB,
    ...(logger ? { logger } : {}),
  };
}
