import cliProgress from 'cli-progress';
import { FINAL_STATUSES, type TaskEvent, type TaskView } from '@research/contracts';
import type { ResearchClient } from './client.js';
import { ConnectionError } from './errors.js';
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
}

/**
 * Follows a task to its end over SSE and prints the closing report. Returns the final view.
 * Reconnects (with Last-Event-ID) while the API restarts; each event is shown once.
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
  try {
    for await (const { event } of client.events(id, {
      ...(options.signal ? { signal: options.signal } : {}),
      onReconnect: (info) => renderer?.reconnecting(info),
    })) {
      state = applyEvent(state, event);
      renderer?.update(state, event);
    }
  } finally {
    renderer?.stop();
  }
  const view = await getAfterRestart(client, id);
  if (!options.quiet) {
    options.out.write(`\n${finalReport(view, { fileUrl: (p) => client.fileUrl(id, p) }).join('\n')}\n`);
  }
  return view;
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
