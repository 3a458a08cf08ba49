import Dockerode from 'dockerode';
import { z } from 'zod';
import { createLogger, type Logger } from '@research/config';
import {
  type ActionResult,
  actionOf,
  DaytonaAction,
  isSandboxAction,
  type SandboxAction,
  type StepOutcome,
} from '@research/contracts';
import {
  containerName,
  createSpec,
  ensureVolume,
  findContainer,
  installRunner,
  probeContainer,
  resolveImage,
  RUNNER_PATH,
} from './container.js';
import { dockerStatus, toSandboxError } from './docker-errors.js';
import {
  PathOutsideWorkspaceError,
  SandboxAbortedError,
  SandboxError,
  SandboxNotFoundError,
  SandboxStoppedDuringCommandError,
  SandboxProtocolError,
  SandboxRunnerError,
  SandboxTimeoutError,
} from './errors.js';
import { ExecTransport } from './exec-transport.js';
import { resolveOptions, type DockerSandboxOptions, type ResolvedOptions } from './options.js';
import { assertTaskId } from './paths.js';
import type { CallOptions, ExportReply, RunnerReply, RunnerRequest, Transport } from './protocol.js';
import { actionRequest } from './requests.js';
import { RunnerTransport } from './runner-transport.js';
import { replaceIfDrifted } from './replace.js';
import type { Drift } from './spec.js';
import type { ExportOptions, ExportResult, RunOptions, Sandbox, SandboxInfo } from './types.js';

const WORKER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Slack on top of a command's own timeout before the host gives up on the runner's reply. */
const REPLY_SLACK_MS = 30_000;
const FILE_OP_REPLY_MS = 60_000;

interface Live {
  container: Dockerode.Container;
  info: SandboxInfo;
  transport: Transport;
}

/**
 * A worker's sandbox on the local Docker engine: one labelled container, a long-lived runner
 * inside it (per-call exec as the fallback), every task in /workspace/<taskId>.
 */
export class DockerSandbox implements Sandbox {
  private readonly o: ResolvedOptions;
  private readonly docker: Dockerode;
  private readonly log: Logger;
  private live: Live | undefined;
  private ensuring: Promise<SandboxInfo> | undefined;
  private ensuredOnce = false;
  private restartCount = 0;

  constructor(options: DockerSandboxOptions) {
    if (!WORKER_ID.test(options.workerId)) {
      throw new TypeError(
        `workerId ${JSON.stringify(options.workerId)} cannot name a container: letters, digits, "_", "." or "-" (at most 64)`,
      );
    }
    this.o = resolveOptions(options);
    this.docker = options.docker ?? new Dockerode();
    this.log = (options.logger ?? createLogger({ level: 'silent', pretty: false })).child({
      component: 'sandbox',
      workerId: options.workerId,
    });
  }

  get restarts(): number {
    return this.restartCount;
  }

  /** Which transport serves actions now: the runner, or the per-call exec fallback. */
  get mode(): 'runner' | 'exec' | undefined {
    return this.live?.transport.kind;
  }

  ensure(): Promise<SandboxInfo> {
    this.ensuring ??= this.doEnsure().finally(() => {
      this.ensuring = undefined;
    });
    return this.ensuring;
  }

  async run(taskId: string, action: DaytonaAction, options: RunOptions = {}): Promise<StepOutcome> {
    assertTaskId(taskId);
    const parsed = DaytonaAction.safeParse(action);
    if (!parsed.success)
      return { ok: false, error: { code: 'invalid_action', message: z.prettifyError(parsed.error) } };
    // The web actions run in the worker, under the egress policy; the sandbox has no network.
    if (!isSandboxAction(parsed.data))
      return {
        ok: false,
        error: { code: 'invalid_action', message: `${parsed.data.action} does not run in the sandbox` },
      };
    let req: RunnerRequest;
    try {
      req = this.toRequest(taskId, parsed.data, options);
    } catch (err) {
      if (err instanceof PathOutsideWorkspaceError)
        return { ok: false, error: { code: err.code, message: err.message } };
      throw err;
    }
    const replyTimeoutMs = req.op === 'execute-command' ? req.timeoutMs + REPLY_SLACK_MS : FILE_OP_REPLY_MS;
    const reply = await this.request<ActionResult>(req, {
      signal: options.signal,
      onOutput: options.onOutput,
      replyTimeoutMs,
      // An action that runs code may have had effects: it is not repeated behind the caller's back.
      idempotent: !actionOf(parsed.data.action).effects.runsCode,
    });
    return reply.ok ? { ok: true, result: reply.result } : { ok: false, error: reply.error };
  }

  async cancelTask(taskId: string): Promise<void> {
    assertTaskId(taskId);
    const live = this.live;
    // No live transport: the runner that ran the task's commands is gone, and its commands with it.
    if (!live?.transport.alive) return;
    await live.transport.call({ op: 'cancel-task', task: taskId }, { replyTimeoutMs: FILE_OP_REPLY_MS });
  }

  async exportFiles(taskId: string, options: ExportOptions): Promise<ExportResult> {
    assertTaskId(taskId);
    const reply = await this.request<ExportReply>(
      {
        op: 'export',
        task: taskId,
        maxBytes: Math.max(0, Math.floor(options.maxBytes)),
        maxFiles: Math.max(0, Math.floor(options.maxFiles ?? this.o.exportMaxFiles)),
        maxNameBytes: Math.max(0, Math.floor(options.maxNameBytes ?? this.o.exportMaxNameBytes)),
        ...(options.stopProcesses ? { stop: true } : {}),
      },
      { replyTimeoutMs: FILE_OP_REPLY_MS, idempotent: true },
    );
    if (!reply.ok) throw new SandboxRunnerError(`export failed: ${reply.error.message}`);
    return {
      files: reply.result.files.map((f) =>
        f.content === undefined
          ? { path: f.path, size: f.size }
          : { path: f.path, size: f.size, content: Buffer.from(f.content, 'base64') },
      ),
      truncated: reply.result.truncated,
      ...(reply.result.omitted > 0 ? { omitted: reply.result.omitted } : {}),
    };
  }

  async cleanupExpired(maxAgeMs: number): Promise<number> {
    const reply = await this.request<{ removed: number }>(
      { op: 'cleanup', maxAgeMs: Math.max(0, maxAgeMs) },
      { replyTimeoutMs: 10 * FILE_OP_REPLY_MS, idempotent: true },
    );
    if (!reply.ok) throw new SandboxRunnerError(`cleanup failed: ${reply.error.message}`);
    return reply.result.removed;
  }

  async removeWorkspace(taskId: string): Promise<boolean> {
    assertTaskId(taskId);
    const reply = await this.request<{ removed: boolean }>(
      { op: 'remove-task', task: taskId },
      { replyTimeoutMs: FILE_OP_REPLY_MS, idempotent: true },
    );
    if (!reply.ok) throw new SandboxRunnerError(`removing the workspace failed: ${reply.error.message}`);
    return reply.result.removed;
  }

  async dispose(mode: 'keep' | 'stop' | 'remove' = 'stop'): Promise<void> {
    await this.ensuring?.catch(() => undefined);
    const live = this.live;
    this.live = undefined;
    await live?.transport.close();
    if (mode === 'keep') return;
    let container = live?.container;
    if (!container) {
      const found = await findContainer(this.docker, this.o.workerId);
      if (!found) return;
      container = this.docker.getContainer(found.Id);
    }
    try {
      if (mode === 'stop') await container.stop({ t: 5 });
      else await container.remove({ force: true });
      this.log.info({ mode }, 'sandbox container disposed');
    } catch (err) {
      const status = dockerStatus(err);
      if (status !== 304 && status !== 404 && status !== 409) throw toSandboxError(err, `dispose (${mode})`);
    }
  }

  private toRequest(taskId: string, a: SandboxAction, options: RunOptions): RunnerRequest {
    const req = actionRequest(taskId, a);
    if (req.op !== 'execute-command') return req;
    const asked = a.action === 'execute-command' ? a.timeoutMs : undefined;
    const timeoutMs = Math.min(asked ?? Infinity, options.timeoutMs ?? Infinity, this.o.commandTimeoutMs);
    const live =
      options.onOutput && this.o.liveOutputMaxBytes > 0
        ? { live: { intervalMs: this.o.liveOutputIntervalMs, maxBytes: this.o.liveOutputMaxBytes } }
        : {};
    return { ...req, timeoutMs: Math.max(1, timeoutMs), maxOutputBytes: this.o.maxOutputBytes, ...live };
  }

  /**
   * Sends a request, re-ensuring the container first when needed. A call that was never
   * delivered, or an idempotent one (file actions), is retried once transparently after the
   * container or runner died; a command in flight is not (it may have had effects) — that call
   * throws a retryable error and the next one finds a fresh sandbox.
   */
  private async request<T>(req: RunnerRequest, opts: CallOptions & { idempotent: boolean }): Promise<RunnerReply<T>> {
    for (let attempt = 0; ; attempt++) {
      const live = await this.current();
      try {
        const reply = await live.transport.call<T>(req, {
          signal: opts.signal,
          replyTimeoutMs: opts.replyTimeoutMs,
          onOutput: opts.onOutput,
        });
        if (live.transport.kind === 'exec' && req.op === 'execute-command' && reply.ok)
          await this.assertStillRunning(live, reply.result as ActionResult);
        return reply;
      } catch (err) {
        if (err instanceof SandboxAbortedError || err instanceof SandboxTimeoutError) throw err;
        const failure = await this.diagnose(live, err);
        const undelivered =
          failure instanceof SandboxNotFoundError &&
          live.transport.kind === 'exec' &&
          !(err instanceof SandboxStoppedDuringCommandError && req.op === 'execute-command');
        if (attempt === 0 && (opts.idempotent || undelivered)) {
          this.log.warn({ err: failure.message, op: req.op }, 'sandbox failed; re-ensuring and retrying once');
          continue;
        }
        throw failure;
      }
    }
  }

  private async current(): Promise<Live> {
    if (this.live?.transport.alive) return this.live;
    await this.ensure();
    if (!this.live) throw new SandboxRunnerError('the sandbox is not ready');
    return this.live;
  }

  /** After a failure: forget the transport and say what happened — container gone or runner broken. */
  private async diagnose(live: Live, err: unknown): Promise<SandboxError> {
    if (this.live === live) this.live = undefined;
    if (live.transport.alive && live.transport.kind === 'runner') await live.transport.close().catch(() => undefined);
    let running = false;
    // The runner's stream can end a moment before the engine marks a killed container as exited.
    for (let i = 0; i < 10; i++) {
      try {
        running = (await live.container.inspect()).State.Running;
      } catch (e) {
        if (dockerStatus(e) !== 404) return toSandboxError(e, 'inspect after failure');
        running = false;
      }
      if (!running) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (!running)
      return new SandboxNotFoundError(
        `the sandbox container ${live.info.name} vanished (removed, stopped or killed); the next call re-creates it`,
        { cause: err },
      );
    return err instanceof SandboxError
      ? err
      : new SandboxRunnerError(`the sandbox runner failed: ${String(err)}`, { cause: err });
  }

  /** The exec fallback cannot tell a killed container from a killed command by the exit code alone. */
  private async assertStillRunning(live: Live, result: ActionResult): Promise<void> {
    if (result.action !== 'execute-command' || (result.exitCode !== 137 && result.exitCode !== -1) || result.timedOut)
      return;
    const state = await live.container.inspect().catch(() => undefined);
    if (!state?.State.Running) throw new SandboxStoppedDuringCommandError();
  }

  private async doEnsure(): Promise<SandboxInfo> {
    let created = false;
    let started = false;
    let container: Dockerode.Container | undefined;
    let inspect: Dockerode.ContainerInspectInfo | undefined;
    let replaced: Drift[] | undefined;
    for (let attempt = 0; attempt < 3 && !inspect?.State.Running; attempt++) {
      const found = await findContainer(this.docker, this.o.workerId);
      if (!found) {
        container = await this.create();
        created = true;
      } else {
        container = this.docker.getContainer(found.Id);
        // Only while nothing of ours runs in it: before this process used it, or once it is not
        // running (its commands died with it). A running container in use is never pulled away
        // from its tasks; a tag rebuilt meanwhile takes effect at the next start.
        if (replaced === undefined && (!this.ensuredOnce || found.State !== 'running')) {
          replaced = await replaceIfDrifted(this.docker, container, this.o, this.log);
          if (replaced.length > 0) continue;
        }
      }
      try {
        inspect = await container.inspect();
        if (inspect.State.Paused) await container.unpause();
        else if (!inspect.State.Running) {
          await container.start();
          started = true;
        }
        inspect = await container.inspect();
      } catch (err) {
        const status = dockerStatus(err);
        if (status === 304) continue; // started by someone else meanwhile
        if (status === 404) continue; // removed meanwhile: look again
        // A container the engine cannot start (dead, half-removed): replace it.
        this.log.warn({ err: String(err) }, 'sandbox container cannot start; replacing it');
        await container.remove({ force: true }).catch(() => undefined);
        inspect = undefined;
      }
    }
    if (!container || !inspect?.State.Running)
      throw new SandboxNotFoundError(`could not get a running sandbox container for worker ${this.o.workerId}`);
    if ((created || started) && this.ensuredOnce) this.restartCount++;
    this.ensuredOnce = true;
    const info: SandboxInfo = {
      containerId: inspect.Id,
      name: inspect.Name.replace(/^\//, ''),
      image: inspect.Config.Image,
      created,
      started,
      ...(replaced && replaced.length > 0 ? { replaced: replaced.map((d) => d.field) } : {}),
    };
    if (
      this.live &&
      this.live.info.containerId === info.containerId &&
      this.live.transport.alive &&
      !created &&
      !started
    ) {
      return info;
    }
    if (this.live?.transport.alive) await this.live.transport.close();
    this.live = undefined;
    const transport = await this.connect(container);
    this.live = { container, info, transport };
    this.log.info(
      {
        containerId: info.containerId.slice(0, 12),
        created,
        started,
        mode: transport.kind,
        restarts: this.restartCount,
      },
      'sandbox ready',
    );
    return info;
  }

  private async create(): Promise<Dockerode.Container> {
    await resolveImage(this.docker, this.o.image);
    await ensureVolume(this.docker, this.o);
    try {
      const c = await this.docker.createContainer(createSpec(this.o));
      this.log.info({ name: containerName(this.o.workerId), image: this.o.image }, 'sandbox container created');
      return c;
    } catch (err) {
      if (dockerStatus(err) !== 409) throw toSandboxError(err, 'create container');
      // Name taken: another process of this worker created it first, or a stale container holds it.
      const found = await findContainer(this.docker, this.o.workerId);
      if (found) return this.docker.getContainer(found.Id);
      throw toSandboxError(
        err,
        `create container (the name ${containerName(this.o.workerId)} is taken by a container without this worker's labels)`,
      );
    }
  }

  private async connect(container: Dockerode.Container): Promise<Transport> {
    const probe = await probeContainer(container, this.o.runnerUid);
    if (probe.chownFailed) this.log.warn('could not hand /workspace to the runner (CHOWN capability dropped?)');
    const identities = {
      runnerUid: this.o.runnerUid,
      taskUidFirst: this.o.taskUidFirst,
      taskUidCount: this.o.taskUidCount,
      taskDiskBytes: this.o.taskDiskMb * 1024 * 1024,
    };
    const fallback = () =>
      new ExecTransport({
        container,
        ...identities,
        maxReadBytes: this.o.maxReadBytes,
        listMaxEntries: this.o.listMaxEntries,
        listMaxDepth: this.o.listMaxDepth,
      });
    if (!this.o.useRunner) return fallback();
    if (!probe.python) {
      this.log.warn('the image has no python3; every action is a per-call exec (slow)');
      return fallback();
    }
    try {
      await installRunner(container);
      return await RunnerTransport.start({
        container,
        python: probe.python,
        scriptPath: RUNNER_PATH,
        config: {
          ...identities,
          maxOutputBytes: this.o.maxOutputBytes,
          maxReadBytes: this.o.maxReadBytes,
          listMaxEntries: this.o.listMaxEntries,
          listMaxDepth: this.o.listMaxDepth,
          exportMaxFiles: this.o.exportMaxFiles,
          exportMaxNameBytes: this.o.exportMaxNameBytes,
        },
        startTimeoutMs: this.o.dockerTimeoutMs,
        logger: this.log,
      });
    } catch (err) {
      if (err instanceof SandboxNotFoundError || err instanceof SandboxProtocolError) throw err;
      this.log.warn({ err: String(err) }, 'the sandbox runner did not start; falling back to per-call exec');
      return fallback();
    }
  }
}
