import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { FINAL_STATUSES, MAX_BATCH_TASKS, type TaskRequest, type TaskView } from '@research/contracts';
import { type ParsedExit, positiveInt } from './args.js';
import { DEFAULT_API_URL, ResearchClient, ApiError } from '@research/client';
import { mapLimit, sleep, submitAll } from './loadtest-submit.js';

export { mapLimit } from './loadtest-submit.js';
import { histogram, niceBinMs, rateSeries, summarize, type Bin, type Percentiles, type RatePoint } from './stats.js';

export interface LoadtestOptions {
  url: string;
  key: string;
  /** Tasks to submit. */
  tasks: number;
  /** Requests in flight at most (submits or batches, then polls). */
  concurrency: number;
  /** Submit in batches of this many tasks (`POST /v1/jobs/batch`, at most 1,000) instead of one request per task. */
  batch?: number;
  /** K-step replay tasks: K `execute-command` blocks the offline model replays one per turn. Default: 1 (when no prompts). */
  steps?: number;
  /** Prompts, one per task, cycled when fewer than `tasks` (from `--prompt-file`). */
  prompts?: string[];
  /** Where the prompts came from, for the report. */
  promptFile?: string;
  /** maxSteps sent with each task. Default: steps + 1 for replay tasks, the API's default otherwise. */
  maxSteps?: number;
  /** Pause between polling rounds. Default: 500 ms. */
  pollIntervalMs?: number;
  /** Budget of the whole run; tasks not finished by then are reported lost. Default: 600 s. */
  timeoutSeconds?: number;
  json?: boolean;
  reportDir?: string;
}

/** What one task went through, as the load test saw it. */
export interface TaskRecord {
  index: number;
  id?: string;
  submitStartMs: number;
  submitEndMs?: number;
  submitError?: string;
  /** The last view polled; final when the task finished in time. */
  view?: TaskView;
  /** The task disappeared (404) while being followed. */
  vanished?: boolean;
}

export interface LoadtestResult {
  tasks: number;
  submitted: number;
  completed: number;
  /** Tasks that ended failed or cancelled, plus submits the API refused or never answered. */
  failed: number;
  /** Submitted tasks that did not finish within the run's budget (or vanished). */
  lost: number;
  failedByReason: { failed: number; cancelled: number; submitError: number };
  mode: { kind: 'replay'; steps: number } | { kind: 'prompts'; file: string | null; count: number };
  url: string;
  concurrency: number;
  /** Tasks per `POST /v1/jobs/batch`; null when each task was its own `POST /v1/jobs`. */
  batch: number | null;
  startedAt: string;
  finishedAt: string;
  durationSec: number;
  submitDurationSec: number;
  submitRatePerSec: number;
  /** Completed tasks per second between the first task's createdAt and the last completed task's finishedAt (server clock). */
  throughputTasksPerSec: number;
  throughputStepsPerSec: number;
  windowSec: number;
  stepsCompleted: number;
  latencyMs: {
    queuedToStarted: Percentiles;
    startedToFinished: Percentiles;
    endToEnd: Percentiles;
    submitRequest: Percentiles;
  };
  /** (end to end − Σ step durationMs) / steps, per completed task with steps. */
  perStepOverheadMs: Percentiles;
  /** The same from startedAt instead of createdAt: what a step costs beyond its own run once the task runs. */
  perStepRunOverheadMs: Percentiles;
  series: { binMs: number; acceptedPerSec: RatePoint[]; completedPerSec: RatePoint[] };
  histogram: { endToEndMs: Bin[] };
  errors: { submitSamples: string[]; pollErrors: number; submitRetries: number };
  lostIds: string[];
  failedIds: string[];
}

/** A prompt of K `execute-command` blocks (`echo step i`), which the offline model replays one per turn. */
export function replayPrompt(steps: number, taskIndex: number): string {
  const blocks = Array.from(
    { length: steps },
    (_, i) =>
      `<daytona-execute>\naction="execute-command"\ncommand="echo task ${taskIndex} step ${i + 1}"\n</daytona-execute>`,
  );
  return `Load test task ${taskIndex}: run these ${steps} step${steps === 1 ? '' : 's'} in order, then finish.\n\n${blocks.join('\n\n')}`;
}

/** Prompts of a file: one per non-empty line; `\n` escapes become newlines so a line can hold a multi-line prompt. */
export function promptsFromText(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => l.replace(/\\n/g, '\n'));
}

export type LoadtestParse = { kind: 'run'; options: LoadtestOptions } | ParsedExit;

/** `npm run loadtest -- --url URL --key KEY --tasks N --concurrency C [--steps K | --prompt-file F] [--json] [--report DIR]`. */
export function parseLoadtestArgs(
  argv: readonly string[],
  env: Record<string, string | undefined> = process.env,
): LoadtestParse {
  let stdout = '';
  let stderr = '';
  const program = new Command('loadtest')
    .description('Drive the research API with N tasks and report throughput and latency.')
    .option('--url <url>', `API base URL (env RESEARCH_API_URL) [${DEFAULT_API_URL}]`)
    .option('--key <key>', 'API bearer key (env RESEARCH_API_KEY)')
    .option('--tasks <n>', 'tasks to submit', positiveInt, 100)
    .option('--concurrency <c>', 'requests in flight at most', positiveInt, 10)
    .addOption(
      new Option(
        '--batch <n>',
        `submit in batches of N tasks (POST /v1/jobs/batch, N at most ${MAX_BATCH_TASKS})`,
      ).argParser((v) => {
        const n = positiveInt(v);
        if (n > MAX_BATCH_TASKS) throw new InvalidArgumentError(`a batch holds at most ${MAX_BATCH_TASKS} tasks.`);
        return n;
      }),
    )
    .addOption(
      new Option('--steps <k>', 'K-step replay tasks (execute-command `echo` blocks) [1]')
        .argParser(positiveInt)
        .conflicts('promptFile'),
    )
    .addOption(new Option('--prompt-file <file>', 'prompts, one per line (cycled when fewer than --tasks)'))
    .option('--max-steps <n>', 'maxSteps sent with each task [steps + 1 for replay tasks]', positiveInt)
    .option('--poll-interval <ms>', 'pause between polling rounds', positiveInt, 500)
    .option('--timeout <seconds>', 'budget of the whole run; unfinished tasks count as lost', positiveInt, 600)
    .option('--json', 'print one JSON line instead of the table', false)
    .option('--report <dir>', 'write loadtest.json and report.html into DIR')
    .exitOverride()
    .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });
  try {
    program.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return { kind: 'exit', code: err.exitCode === 0 ? 0 : 2, stdout, stderr };
    throw err;
  }
  const o = program.opts<{
    url?: string;
    key?: string;
    tasks: number;
    concurrency: number;
    batch?: number;
    steps?: number;
    promptFile?: string;
    maxSteps?: number;
    pollInterval: number;
    timeout: number;
    json: boolean;
    report?: string;
  }>();
  const key = o.key ?? env.RESEARCH_API_KEY;
  if (!key)
    return { kind: 'exit', code: 3, stdout, stderr: 'loadtest: no API key: pass --key or set RESEARCH_API_KEY\n' };
  const options: LoadtestOptions = {
    url: o.url ?? (env.RESEARCH_API_URL || DEFAULT_API_URL),
    key,
    tasks: o.tasks,
    concurrency: o.concurrency,
    pollIntervalMs: o.pollInterval,
    timeoutSeconds: o.timeout,
    json: o.json,
  };
  if (o.promptFile !== undefined) options.promptFile = o.promptFile;
  else options.steps = o.steps ?? 1;
  if (o.maxSteps !== undefined) options.maxSteps = o.maxSteps;
  if (o.batch !== undefined) options.batch = o.batch;
  if (o.report !== undefined) options.reportDir = o.report;
  return { kind: 'run', options };
}

export async function loadPrompts(options: LoadtestOptions): Promise<LoadtestOptions> {
  if (!options.promptFile || options.prompts) return options;
  const prompts = promptsFromText(await readFile(options.promptFile, 'utf8'));
  if (prompts.length === 0) throw new Error(`${options.promptFile} holds no prompts (one per line)`);
  return { ...options, prompts };
}

export interface RunHooks {
  /** A one-line status now and then (to stderr in the CLI). */
  onProgress?: (p: { submitted: number; finished: number; tasks: number; elapsedSec: number }) => void;
  /** Each accepted task, as soon as the API accepts it. */
  onSubmitted?: (id: string, index: number) => void;
  client?: ResearchClient;
}

/** Submits, follows to the end (polling), and measures. */
export async function runLoadtest(options: LoadtestOptions, hooks: RunHooks = {}): Promise<LoadtestResult> {
  const client =
    hooks.client ?? new ResearchClient({ baseUrl: options.url, apiKey: options.key, requestTimeoutMs: 30_000 });
  const runId = randomUUID().slice(0, 8);
  const startMs = Date.now();
  const deadlineMs = startMs + (options.timeoutSeconds ?? 600) * 1_000;
  const pollIntervalMs = options.pollIntervalMs ?? 500;
  const records: TaskRecord[] = Array.from({ length: options.tasks }, (_, index) => ({ index, submitStartMs: 0 }));
  const errors = { submitSamples: [] as string[], pollErrors: 0, submitRetries: 0 };
  let finished = 0;
  let submitted = 0;
  let lastReport = 0;
  const report = (force = false) => {
    if (!hooks.onProgress || (!force && Date.now() - lastReport < 2_000)) return;
    lastReport = Date.now();
    hooks.onProgress({ submitted, finished, tasks: options.tasks, elapsedSec: (Date.now() - startMs) / 1000 });
  };

  const requestFor = (i: number): TaskRequest => {
    const prompt = options.prompts ? options.prompts[i % options.prompts.length]! : replayPrompt(options.steps ?? 1, i);
    const request: TaskRequest = { prompt, metadata: { loadtest: runId, index: i } };
    const maxSteps = options.maxSteps ?? (options.prompts ? undefined : Math.min(500, (options.steps ?? 1) + 1));
    if (maxSteps !== undefined) request.maxSteps = maxSteps;
    return request;
  };

  await submitAll(records, {
    client,
    concurrency: options.concurrency,
    ...(options.batch !== undefined ? { batch: options.batch } : {}),
    deadlineMs,
    requestFor,
    keyFor: (i) => `loadtest-${runId}-${i}`,
    onAccepted: (r) => {
      submitted += 1;
      hooks.onSubmitted?.(r.id!, r.index);
      report();
    },
    errors,
  });
  const submitEndMs = Date.now();

  // Follow: poll the unfinished ones in rounds. Latencies come from the server's timestamps, so
  // the polling interval bounds only how soon we notice, not what we measure.
  let open = records.filter((r) => r.id !== undefined);
  while (open.length > 0 && Date.now() < deadlineMs) {
    const roundStart = Date.now();
    await mapLimit(open, options.concurrency, async (r) => {
      try {
        r.view = await client.get(r.id!);
        if (FINAL_STATUSES.includes(r.view.status)) finished += 1;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          r.vanished = true;
          return;
        }
        errors.pollErrors += 1;
      }
    });
    open = open.filter((r) => !r.vanished && !(r.view && FINAL_STATUSES.includes(r.view.status)));
    report();
    if (open.length === 0) break;
    const wait = Math.min(pollIntervalMs - (Date.now() - roundStart), deadlineMs - Date.now());
    if (wait > 0) await sleep(wait);
  }
  report(true);
  return buildResult(records, options, { startMs, submitEndMs, endMs: Date.now(), errors });
}

/** Pure: the figures from what the run saw. */
export function buildResult(
  records: readonly TaskRecord[],
  options: Pick<LoadtestOptions, 'url' | 'concurrency' | 'batch' | 'steps' | 'prompts' | 'promptFile'>,
  run: { startMs: number; submitEndMs: number; endMs: number; errors: LoadtestResult['errors'] },
): LoadtestResult {
  const accepted = records.filter((r) => r.id !== undefined);
  const isFinal = (r: TaskRecord) => r.view !== undefined && FINAL_STATUSES.includes(r.view.status);
  const done = accepted.filter((r) => r.view?.status === 'completed').map((r) => r.view!);
  const failedViews = accepted.filter((r) => r.view?.status === 'failed');
  const cancelledViews = accepted.filter((r) => r.view?.status === 'cancelled');
  const lost = accepted.filter((r) => !isFinal(r));
  const submitErrors = records.filter((r) => r.submitError !== undefined).length;

  const t = (iso: string | undefined) => (iso ? Date.parse(iso) : NaN);
  const queuedToStarted = done.map((v) => t(v.startedAt) - t(v.createdAt));
  const startedToFinished = done.map((v) => t(v.finishedAt) - t(v.startedAt));
  const endToEnd = done.map((v) => t(v.finishedAt) - t(v.createdAt));
  const stepSum = (v: TaskView) => v.steps.reduce((s, st) => s + (st.durationMs ?? 0), 0);
  const withSteps = done.filter((v) => v.steps.length > 0);
  const perStep = withSteps.map((v) => (t(v.finishedAt) - t(v.createdAt) - stepSum(v)) / v.steps.length);
  const perStepRun = withSteps.map((v) => (t(v.finishedAt) - t(v.startedAt) - stepSum(v)) / v.steps.length);
  const stepsCompleted = done.reduce((s, v) => s + v.steps.length, 0);

  const createdMs = accepted.map((r) => t(r.view?.createdAt)).filter(Number.isFinite);
  const finishedMs = done.map((v) => t(v.finishedAt)).filter(Number.isFinite);
  const windowStart = createdMs.length > 0 ? min(createdMs) : run.startMs;
  const windowEnd = finishedMs.length > 0 ? max(finishedMs) : windowStart;
  const windowSec = Math.max(0, (windowEnd - windowStart) / 1000);
  const binMs = niceBinMs(Math.max(windowEnd, createdMs.length > 0 ? max(createdMs) : windowStart) - windowStart);

  const firstSubmit = records.length > 0 ? min(records.map((r) => r.submitStartMs)) : run.startMs;
  const submitDurationSec = Math.max(0.001, (run.submitEndMs - firstSubmit) / 1000);
  const submitLatency = accepted.map((r) => (r.submitEndMs ?? NaN) - r.submitStartMs);

  return {
    tasks: records.length,
    submitted: accepted.length,
    completed: done.length,
    failed: failedViews.length + cancelledViews.length + submitErrors,
    lost: lost.length,
    failedByReason: { failed: failedViews.length, cancelled: cancelledViews.length, submitError: submitErrors },
    mode: options.prompts
      ? { kind: 'prompts', file: options.promptFile ?? null, count: options.prompts.length }
      : { kind: 'replay', steps: options.steps ?? 1 },
    url: options.url,
    concurrency: options.concurrency,
    batch: options.batch ?? null,
    startedAt: new Date(run.startMs).toISOString(),
    finishedAt: new Date(run.endMs).toISOString(),
    durationSec: (run.endMs - run.startMs) / 1000,
    submitDurationSec,
    submitRatePerSec: accepted.length / submitDurationSec,
    throughputTasksPerSec: windowSec > 0 ? done.length / windowSec : 0,
    throughputStepsPerSec: windowSec > 0 ? stepsCompleted / windowSec : 0,
    windowSec,
    stepsCompleted,
    latencyMs: {
      queuedToStarted: summarize(queuedToStarted),
      startedToFinished: summarize(startedToFinished),
      endToEnd: summarize(endToEnd),
      submitRequest: summarize(submitLatency),
    },
    perStepOverheadMs: summarize(perStep),
    perStepRunOverheadMs: summarize(perStepRun),
    series: {
      binMs,
      acceptedPerSec: rateSeries(createdMs, windowStart, binMs),
      completedPerSec: rateSeries(finishedMs, windowStart, binMs),
    },
    histogram: { endToEndMs: histogram(endToEnd.filter(Number.isFinite)) },
    errors: run.errors,
    lostIds: lost.map((r) => r.id!).slice(0, 50),
    failedIds: [...failedViews, ...cancelledViews].map((r) => r.id!).slice(0, 50),
  };
}

/** The human table. */
export function formatResult(r: LoadtestResult): string {
  const n = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
  const row = (label: string, p: Percentiles) =>
    `  ${label.padEnd(18)}${n(p.p50, 0).padStart(9)}${n(p.p95, 0).padStart(9)}${n(p.p99, 0).padStart(9)}${n(p.max, 0).padStart(9)}`;
  const mode =
    r.mode.kind === 'replay'
      ? `${r.mode.steps}-step replay tasks`
      : `prompts from ${r.mode.file ?? 'a list'} (${r.mode.count})`;
  const lines = [
    `loadtest: ${r.tasks} ${mode} against ${r.url}, concurrency ${r.concurrency}${r.batch !== null ? `, in batches of ${r.batch}` : ''}`,
    `submitted   ${r.submitted}/${r.tasks} in ${n(r.submitDurationSec, 2)} s  (${n(r.submitRatePerSec)} tasks/s)`,
    `finished    completed ${r.completed} · failed ${r.failed} (failed ${r.failedByReason.failed}, cancelled ${r.failedByReason.cancelled}, refused ${r.failedByReason.submitError}) · lost ${r.lost}`,
    `throughput  ${n(r.throughputTasksPerSec, 2)} tasks/s · ${n(r.throughputStepsPerSec, 2)} steps/s  (over ${n(r.windowSec, 2)} s, first createdAt → last finishedAt)`,
    `latency ms              p50      p95      p99      max`,
    row('queued→started', r.latencyMs.queuedToStarted),
    row('started→finished', r.latencyMs.startedToFinished),
    row('end to end', r.latencyMs.endToEnd),
    row('submit request', r.latencyMs.submitRequest),
    `per-step overhead  p50 ${n(r.perStepOverheadMs.p50)} ms · mean ${n(r.perStepOverheadMs.mean)} ms (end to end − step time, per step); once running: p50 ${n(r.perStepRunOverheadMs.p50)} ms`,
  ];
  if (r.errors.submitSamples.length > 0) lines.push(`submit errors: ${r.errors.submitSamples.join(' | ')}`);
  if (r.errors.pollErrors > 0) lines.push(`poll errors: ${r.errors.pollErrors}`);
  if (r.lost > 0)
    lines.push(
      `lost (not finished within the run's budget): ${r.lostIds.slice(0, 10).join(', ')}${r.lost > 10 ? ', …' : ''}`,
    );
  return lines.join('\n');
}

// Loops rather than Math.min(...xs): a spread of 100k+ values overflows the call stack.
function min(xs: readonly number[]): number {
  return xs.reduce((m, v) => Math.min(v, m), Infinity);
}

function max(xs: readonly number[]): number {
  return xs.reduce((m, v) => Math.max(v, m), -Infinity);
}

/**
 * One authenticated request before the run, so a wrong key or a missing API ends the run with
 * one clear message instead of N submit errors. An unknown id answers 404 when all is well.
 */
export async function preflight(client: ResearchClient): Promise<void> {
  try {
    await client.get('loadtest-preflight');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return;
    throw err;
  }
}
