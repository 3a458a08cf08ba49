/**
 * TEST HELPER ONLY — not part of the product, not compiled into dist.
 *
 * A StepRunner for unit tests of the loop: create-file, read-file and list-files work on a
 * temporary directory; execute-command NEVER runs anything — it returns canned test data from
 * `onExecute` (default: a refusal), and the web actions reach no network — they return canned
 * test data from `onWeb` (default: a refusal). In the product every sandbox action runs in the
 * Docker sandbox and every web action in the worker under the egress policy.
 */
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type {
  ExecuteCommandAction,
  ExecuteCommandResult,
  FileEntry,
  StepOutcome,
  ToolCall,
  WebFetchAction,
  WebSearchAction,
} from '@research/contracts';
import type { StepRunner } from '../loop.js';
import type { ModelProvider, ModelRequest, ModelTurn } from '../provider.js';

export type CannedExecute = (
  action: ExecuteCommandAction,
  root: string,
) => Promise<Omit<ExecuteCommandResult, 'action'>> | Omit<ExecuteCommandResult, 'action'>;

/** Canned web steps (TEST DATA): the outcome, and for a fetch the file it leaves in the task directory. */
export type CannedWeb = (action: WebSearchAction | WebFetchAction, root: string) => Promise<StepOutcome> | StepOutcome;

const NO_WEB: CannedWeb = (a) => ({
  ok: false,
  error: { code: 'egress_denied', message: `TEST DATA: ${a.action} is not available in the temp-dir test runner` },
});

export class TempDirStepRunner implements StepRunner {
  /** Every call received, in order (step index, call). */
  readonly calls: { step: number; call: ToolCall }[] = [];

  private constructor(
    readonly root: string,
    private readonly onExecute: CannedExecute,
    private readonly onWeb: CannedWeb,
  ) {}

  static async create(options: { onExecute?: CannedExecute; onWeb?: CannedWeb } = {}): Promise<TempDirStepRunner> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'agent-test-'));
    return new TempDirStepRunner(
      root,
      options.onExecute ??
        (() => ({
          exitCode: 127,
          stdout: '',
          stderr: 'TEST DATA: execute-command is not available in the temp-dir test runner',
          timedOut: false,
          truncated: false,
          durationMs: 0,
        })),
      options.onWeb ?? NO_WEB,
    );
  }

  async dispose(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  steps(): number[] {
    return this.calls.map((c) => c.step);
  }

  async read(rel: string): Promise<string> {
    return readFile(path.join(this.root, rel), 'utf8');
  }

  #resolve(rel: string): string | undefined {
    const full = path.resolve(this.root, rel);
    return full === this.root || full.startsWith(this.root + path.sep) ? full : undefined;
  }

  async run(call: ToolCall, step: number, signal: AbortSignal): Promise<StepOutcome> {
    signal.throwIfAborted();
    this.calls.push({ step, call });
    const a = call.args;
    const refuse = (p: string): StepOutcome => ({
      ok: false,
      error: { code: 'path_outside_workspace', message: `${p} is outside the task directory` },
    });
    switch (a.action) {
      case 'create-file': {
        const full = this.#resolve(a.filePath);
        if (!full) return refuse(a.filePath);
        const existed = await stat(full).then(
          () => true,
          () => false,
        );
        await mkdir(path.dirname(full), { recursive: true });
        await writeFile(full, a.content);
        return {
          ok: true,
          result: {
            action: 'create-file',
            path: a.filePath,
            bytes: Buffer.byteLength(a.content),
            overwritten: existed,
          },
        };
      }
      case 'read-file': {
        const full = this.#resolve(a.filePath);
        if (!full) return refuse(a.filePath);
        try {
          const content = await readFile(full, 'utf8');
          return {
            ok: true,
            result: {
              action: 'read-file',
              path: a.filePath,
              size: Buffer.byteLength(content),
              content,
              binary: false,
              truncated: false,
            },
          };
        } catch {
          return { ok: false, error: { code: 'not_found', message: `${a.filePath} does not exist` } };
        }
      }
      case 'list-files': {
        const rel = a.path ?? '.';
        const full = this.#resolve(rel);
        if (!full) return refuse(rel);
        const files: FileEntry[] = [];
        const walk = async (dir: string): Promise<void> => {
          for (const entry of await readdir(dir, { withFileTypes: true })) {
            const abs = path.join(dir, entry.name);
            const relPath = path.relative(full, abs).split(path.sep).join('/');
            if (entry.isDirectory()) {
              files.push({ path: relPath, size: 0, type: 'dir' });
              await walk(abs);
            } else files.push({ path: relPath, size: (await stat(abs)).size, type: 'file' });
          }
        };
        await walk(full);
        files.sort((x, y) => x.path.localeCompare(y.path));
        return { ok: true, result: { action: 'list-files', path: rel, files, truncated: false } };
      }
      case 'execute-command':
        return { ok: true, result: { action: 'execute-command', ...(await this.onExecute(a, this.root)) } };
      case 'web-search':
      case 'web-fetch':
        return this.onWeb(a, this.root);
    }
  }
}

/** A model that plays back scripted turns and records what it was asked. */
export class ScriptedModel implements ModelProvider {
  readonly name = 'scripted';
  readonly requests: ModelRequest[] = [];
  readonly signals: AbortSignal[] = [];
  constructor(private readonly turns: (ModelTurn | ((n: number, signal: AbortSignal) => Promise<ModelTurn>))[]) {}

  async complete(req: ModelRequest, signal: AbortSignal): Promise<ModelTurn> {
    const n = this.requests.length;
    this.requests.push(structuredClone({ ...req, messages: [...req.messages], tools: [...req.tools] }));
    this.signals.push(signal);
    const turn = this.turns[Math.min(n, this.turns.length - 1)];
    if (!turn) throw new Error('ScriptedModel has no turns');
    return typeof turn === 'function' ? turn(n, signal) : turn;
  }
}

/** Resolves when the signal aborts (rejecting with its reason), for steps and models that hang. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
