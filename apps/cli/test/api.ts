import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { ResearchClient } from '@research/client';
import type { TaskResult } from '@research/contracts';
import { createRedis, waitForRedis, type TaskStore } from '@research/queue';
import { REDIS_URL, cleanPrefix, startBuiltApi, testPrefix, type RunningApi } from '@research/testing';

export { playStep } from '@research/testing';
// apps/api has no `exports` map (yet); its built entry is the stable way in.
import { createApi } from '@research/api/dist/index.js';

export const KEY = 'cli-test-key-0123456789';

/** The real API (`createApi`) over real Redis, listening on loopback; port 0 picks a free one. */
export function startApi(prefix: string, port = 0): Promise<RunningApi> {
  return startBuiltApi(createApi, { prefix, apiKeys: [KEY], port });
}

/** The real API for one test file; filled in once `beforeAll` has run. */
export interface ApiFixture extends RunningApi {
  /** The queue prefix, the test's own. */
  prefix: string;
  /** `RESEARCH_API_URL` and `RESEARCH_API_KEY` of this API: the environment {@link cli} runs under. */
  env: Record<string, string>;
  /** With {@link KEY}. */
  client: ResearchClient;
  /** A new API on the same port over the same keys, as `npm run up` restarting it would; `abrupt` cuts the sockets first. */
  restart(options?: { abrupt?: boolean }): Promise<void>;
}

/**
 * The API ({@link startApi}) for one test file under a prefix of its own (`testPrefix(name)`):
 * started in `beforeAll`, closed and its keys deleted in `afterAll`.
 */
export function useApi(name: string): ApiFixture {
  const prefix = testPrefix(name);
  const api = { prefix } as ApiFixture;
  const serve = (started: RunningApi) =>
    Object.assign(api, started, {
      env: { RESEARCH_API_URL: started.url, RESEARCH_API_KEY: KEY },
      client: new ResearchClient({ baseUrl: started.url, apiKey: KEY }),
    });
  api.restart = async ({ abrupt = false } = {}) => {
    await api.close({ abrupt });
    serve(await startApi(prefix, api.port));
  };
  beforeAll(async () => {
    serve(await startApi(prefix));
  });
  afterAll(async () => {
    await api.close?.();
    await cleanPrefix(prefix);
  });
  return api;
}

/** A temporary directory for one test file, made now and removed with everything in it in `afterAll`. */
export function useTempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), name));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const now = () => new Date().toISOString();

/** Plays the worker's end: files kept, `finished`, final status with the result. */
export async function playFinish(store: TaskStore, id: string, summary: string): Promise<TaskResult> {
  const report = Buffer.from('# Report\n\nMarkets are up.\n');
  const todo = Buffer.from('- [x] gather data\n');
  await store.files.save(id, [
    { path: 'todo.md', size: todo.length, content: todo },
    { path: 'report.md', size: report.length, content: report },
  ]);
  const result: TaskResult = {
    summary,
    files: [
      { path: 'todo.md', size: todo.length },
      { path: 'report.md', size: report.length },
    ],
  };
  await store.events.append(id, { type: 'finished', at: now(), summary, reason: 'answer' });
  await store.lifecycle.transition(id, 'completed', { result });
  return result;
}

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface CliRun {
  /** Resolves with the exit code and all output once the process exits. */
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Output so far. */
  stdout(): string;
  /** Resolves when stdout matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** `node dist/main.js …` as a user runs it (stdout is a pipe, so plain lines, no bar). */
export function cli(args: string[], env: Record<string, string | undefined>): CliRun {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) w();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
  });
  return {
    done,
    stdout: () => out,
    waitFor: (pattern, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`timed out waiting for ${pattern}; stdout so far:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        waiters.push(check);
        check();
      }),
  };
}

/**
 * Plays the worker for every task the API queues: finds them in the agent queue's wait list or
 * prioritized set (job id = task id), runs as many steps as the prompt has `<daytona-execute>` blocks, and completes —
 * unless `decide` says to fail the task or leave it hanging.
 */
export function fakeWorker(
  api: () => RunningApi,
  prefix: string,
  decide: (metadata: Record<string, unknown> | undefined) => 'complete' | 'fail' | 'hang' = () => 'complete',
) {
  const redis = createRedis(REDIS_URL, 'worker');
  const seen = new Set<string>();
  let stopped = false;
  const play = async (id: string) => {
    const store = api().store;
    const request = await store.records.request(id);
    if (!request) return;
    const what = decide(request.metadata);
    if (what === 'hang') return;
    await store.lifecycle.start(id, { workerId: 'fake-worker' });
    const steps = (request.prompt.match(/<daytona-execute>/g) ?? []).length;
    for (let i = 0; i < steps; i++) {
      await store.steps.set(id, {
        index: i,
        action: 'execute-command',
        status: 'completed',
        attempts: 1,
        exitCode: 0,
        durationMs: 10,
      });
      await store.events.append(id, {
        type: 'tool_call',
        at: now(),
        step: i,
        call: { id: `call_${i}`, tool: 'daytona-execute', args: { action: 'execute-command', command: `echo ${i}` } },
      });
    }
    if (what === 'fail')
      await store.lifecycle.transition(id, 'failed', {
        error: { code: 'sandbox_error', message: 'the fake worker failed it' },
      });
    else await store.lifecycle.transition(id, 'completed', { result: { summary: `ran ${steps} steps`, files: [] } });
  };
  const loop = (async () => {
    await waitForRedis(redis, REDIS_URL);
    while (!stopped) {
      // Task jobs with a priority (every one since tasks take `priority`) wait in the `prioritized` set, others in `wait`.
      const ids = [
        ...(await redis.lrange(`${prefix}:agent:wait`, 0, -1)),
        ...(await redis.zrange(`${prefix}:agent:prioritized`, 0, -1)),
      ];
      for (const id of ids) {
        if (seen.has(id)) continue;
        seen.add(id);
        await play(id);
      }
      await new Promise((r) => setTimeout(r, 30));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await redis.quit();
    },
  };
}

const LOADTEST_MAIN = fileURLToPath(new URL('../dist/loadtest-main.js', import.meta.url));

/** `node dist/loadtest-main.js …`. */
export function loadtestCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [LOADTEST_MAIN, ...args], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err })));
}
