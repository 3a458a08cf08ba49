import cliProgress from 'cli-progress';
import { FINAL_STATUSES, type TaskEvent, type TaskView } from '@research/contracts';
import {
  type EventsOptions,
  type ResearchClient,
  ApiError,
  ConnectionError,
  ProtocolError,
  TimeoutError,
} from '@research/client';
import { applyEvent, barText, eventLine, finalReport, initialState, type FollowState } from './render.js';

/** Where follow output goes; `write` receives whole lines or bar frames. */
export interface Output {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Draws the task's progress as it changes. */
export interface ProgressRenderer {
  start(state: FollowState): void;
  update(state: FollowState, event: TaskEvent): void;
  reconnecting(info: { attempt: number; reason: string }): void;
  /** The event stream gave up: the task is followed by reading its status from now on. */
  polling(info: { reason: string }): void;
  /** A status read while polling changed what is shown. */
  polled(state: FollowState): void;
  stop(): void;
}

/** One line per meaningful event: for logs, pipes and CI, where a redrawn bar would be noise. */
export function plainRenderer(out: Output, id = 'task'): ProgressRenderer {
  return {
    start: (s) => {
      out.write(`following ${id} (up to ${s.maxSteps} steps)\n`);
    },
    update: (s, e) => {
      const line = eventLine(s, e);
      if (line !== undefined) out.write(`${line}\n`);
    },
    reconnecting: ({ attempt, reason }) => {
      out.write(`connection lost (${reason}); reconnecting (attempt ${attempt})…\n`);
    },
    polling: ({ reason }) => {
      out.write(`event stream unavailable (${reason}); following the task's status instead\n`);
    },
    polled: (s) => {
      out.write(`${s.status} · step ${s.step}/${s.maxSteps} · ${s.phase}\n`);
    },
    stop: () => {},
  };
}

/** A live bar: `[████░░░░] 3/8 steps | running-step · execute-command python3 analysis.py`. */
export function barRenderer(out: Output): ProgressRenderer {
  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {value}/{total} steps | {text}',
      barCompleteChar: '█',
      barIncompleteChar: '░',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      linewrap: false,
      fps: 10,
      stream: out as unknown as NodeJS.WritableStream,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    start: (s) => {
      bar.start(s.maxSteps, Math.min(s.step, s.maxSteps), { text: barText(s) });
      started = true;
    },
    update: (s) => {
      if (bar.getTotal() !== s.maxSteps) bar.setTotal(s.maxSteps);
      bar.update(Math.min(s.step, s.maxSteps), { text: barText(s) });
    },
    reconnecting: ({ attempt }) => {
      bar.update({ text: `connection lost · reconnecting (attempt ${attempt})…` });
    },
    polling: () => {
      bar.update({ text: 'event stream unavailable · following the status' });
    },
    polled: (s) => {
      if (bar.getTotal() !== s.maxSteps) bar.setTotal(s.maxSteps);
      bar.update(Math.min(s.step, s.maxSteps), { text: `${barText(s)} (status)` });
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}

export interface FollowOptions {
  out: Output;
  /** Live bar when true, plain lines otherwise. Default: `out.isTTY`. */
  tty?: boolean;
  /** Only the final view is wanted (for `--json`): draw nothing. */
  quiet?: boolean;
  signal?: AbortSignal;
  /** Pause between status reads once the event stream gave up. Default: 1_000. */
  pollIntervalMs?: number;
  /** Passed to `client.events`: when the stream gives up. Defaults: the client's. */
  stream?: Pick<EventsOptions, 'maxFailures' | 'reconnectDelayMs' | 'reconnectForMs'>;
}

/**
 * Follows a task to its end over SSE and prints the closing report. Returns the final view.
 * Reconnects (with Last-Event-ID) while the API restarts; each event is shown once. When the
 * stream keeps failing (the client gives up after a bounded number of attempts: an API whose
 * event route errors, a proxy that cuts streams), it reads the task's status instead, every
 * `pollIntervalMs`, until the task is final.
 */
export async function followTask(client: ResearchClient, id: string, options: FollowOptions): Promise<TaskView> {
  const first = await client.get(id);
  let state = initialState(first);
  const renderer: ProgressRenderer | undefined = options.quiet
    ? undefined
    : (options.tty ?? options.out.isTTY)
      ? barRenderer(options.out)
      : plainRenderer(options.out, id);
  renderer?.start(state);
  let view: TaskView | undefined;
  try {
    try {
      for await (const { event } of client.events(id, {
        ...options.stream,
        ...(options.signal ? { signal: options.signal } : {}),
        onReconnect: (info) => renderer?.reconnecting(info),
      })) {
        state = applyEvent(state, event);
        renderer?.update(state, event);
      }
    } catch (err) {
      if (!streamFailed(err) || options.signal?.aborted) throw err;
      renderer?.polling({ reason: (err as Error).message });
      view = await pollUntilFinal(client, id, state, renderer, options);
    }
  } finally {
    renderer?.stop();
  }
  view ??= await getAfterRestart(client, id);
  if (!options.quiet) {
    options.out.write(`\n${finalReport(view, { fileUrl: (p) => client.fileUrl(id, p) }).join('\n')}\n`);
  }
  return view;
}

/** The stream broke in a way the task's status may still get past (not a 401 or a 404). */
function streamFailed(err: unknown): boolean {
  if (err instanceof ApiError) return err.status >= 500 || err.status === 429;
  return err instanceof ConnectionError || err instanceof TimeoutError || err instanceof ProtocolError;
}

/** Reads the task's status until it is final; a read that fails is retried, for as long as the stream was. */
async function pollUntilFinal(
  client: ResearchClient,
  id: string,
  start: FollowState,
  renderer: ProgressRenderer | undefined,
  options: FollowOptions,
): Promise<TaskView> {
  const intervalMs = options.pollIntervalMs ?? 1_000;
  const giveUpAfterMs = options.stream?.reconnectForMs ?? 60_000;
  let state = start;
  let failingSince: number | undefined;
  for (;;) {
    try {
      const view = await client.get(id);
      failingSince = undefined;
      const next = stateFromView(state, view);
      if (next.status !== state.status || next.step !== state.step || next.phase !== state.phase)
        renderer?.polled(next);
      state = next;
      if (FINAL_STATUSES.includes(view.status)) return view;
    } catch (err) {
      if (!streamFailed(err)) throw err;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > giveUpAfterMs) throw err;
    }
    if (options.signal?.aborted) return client.get(id);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function stateFromView(state: FollowState, view: TaskView): FollowState {
  const next: FollowState = {
    ...state,
    status: view.status,
    step: view.progress.step,
    maxSteps: view.progress.maxSteps,
    phase: view.progress.phase,
  };
  if (view.workerId) next.workerId = view.workerId;
  if (view.result) next.result = view.result;
  if (view.error) next.error = view.error;
  return next;
}

/** The final view; the API may be coming back from a restart, so connection errors get a few more tries. */
async function getAfterRestart(client: ResearchClient, id: string): Promise<TaskView> {
  for (let attempt = 0; ; attempt++) {
    try {
      const view = await client.get(id);
      // The final event is written with the status in one transaction, so this is final already;
      // the check guards against an API that answers from a stale replica.
      if (FINAL_STATUSES.includes(view.status) || attempt >= 10) return view;
    } catch (err) {
      if (!(err instanceof ConnectionError) || attempt >= 20) throw err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
