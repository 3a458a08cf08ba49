import {
  exitCodeOf,
  FINAL_STATUSES,
  summarizeAction,
  type Phase,
  type TaskError,
  type TaskEvent,
  type TaskResult,
  type TaskStatus,
  type TaskView,
  type ToolCall,
} from '@research/contracts';

/** What the follow display shows, folded from the task's view and its events. */
export interface FollowState {
  status: TaskStatus;
  /** Steps started so far (1-based index of the current step). */
  step: number;
  maxSteps: number;
  phase: Phase;
  /** The current or last action, e.g. `execute-command python3 analysis.py`. */
  action: string;
  workerId?: string;
  summary?: string;
  result?: TaskResult;
  error?: TaskError;
  /** The last line a running command printed (from `tool_output`), shown beside the bar. */
  lastOutput?: string;
}

export function initialState(view?: Pick<TaskView, 'status' | 'progress' | 'workerId'>): FollowState {
  const state: FollowState = {
    status: view?.status ?? 'queued',
    step: view?.progress.step ?? 0,
    maxSteps: view?.progress.maxSteps ?? 1,
    phase: view?.progress.phase ?? 'queued',
    action: '',
  };
  if (view?.workerId) state.workerId = view.workerId;
  return state;
}

/** Folds one event into the state; pure, so the display can be tested from a list of events. */
export function applyEvent(state: FollowState, event: TaskEvent): FollowState {
  switch (event.type) {
    case 'status': {
      const next: FollowState = { ...state, status: event.status };
      if (event.status === 'running' && state.phase === 'queued') next.phase = 'starting';
      if (FINAL_STATUSES.includes(event.status)) next.phase = 'done';
      if (event.workerId) next.workerId = event.workerId;
      if (event.result) next.result = event.result;
      if (event.error) next.error = event.error;
      return next;
    }
    case 'progress':
      return { ...state, step: event.progress.step, maxSteps: event.progress.maxSteps, phase: event.progress.phase };
    case 'turn':
      return { ...state, phase: 'thinking' };
    case 'tool_call':
      return {
        ...state,
        step: Math.max(state.step, event.step + 1),
        maxSteps: Math.max(state.maxSteps, event.step + 1),
        phase: 'running-step',
        action: describeCall(event.call),
      };
    case 'tool_result': {
      const { lastOutput: _shown, ...rest } = state;
      return { ...rest, phase: 'thinking' };
    }
    case 'tool_output': {
      const last = event.chunk
        .split('\n')
        .filter((l) => l.trim() !== '')
        .pop();
      return last === undefined ? state : { ...state, lastOutput: truncate(oneLine(last), 60) };
    }
    case 'finished':
      return { ...state, phase: 'finishing', summary: event.summary };
    case 'assistant_message':
    case 'tool_error':
    case 'model_delta':
    case 'webhook':
      return state;
  }
}

/** `execute-command python3 analysis.py`, `create-file report.md`, … on one line of bounded width. */
export function describeCall(call: ToolCall): string {
  return truncate(`${call.args.action} ${oneLine(summarizeAction(call.args))}`, 80);
}

/**
 * The line printed for an event when stdout is not a terminal; undefined for events that add
 * nothing a reader of a log wants (turn markers, progress ticks already shown by tool calls).
 */
export function eventLine(state: FollowState, event: TaskEvent): string | undefined {
  switch (event.type) {
    case 'status':
      if (event.status === 'running') return `running${event.workerId ? ` on ${event.workerId}` : ''}`;
      if (event.status === 'queued') return 'queued';
      return undefined; // the final status is part of the closing report
    case 'tool_call':
      return `step ${event.step + 1}/${state.maxSteps} ${describeCall(event.call)}`;
    case 'tool_result': {
      const o = event.outcome;
      const took = `${Math.round(event.durationMs)} ms`;
      if (!o.ok) return `  refused: ${truncate(oneLine(o.error.message), 100)} (${took})`;
      const code = exitCodeOf(o.result);
      const timedOut = 'timedOut' in o.result && o.result.timedOut;
      if (code !== undefined) return `  exit ${code}${timedOut ? ' (timed out)' : ''} (${took})`;
      return `  ok (${took})`;
    }
    case 'tool_error':
      return `  tool error: ${truncate(oneLine(event.message), 100)}`;
    case 'tool_output':
      return outputLines(event.stream, event.chunk);
    case 'webhook':
      return `  webhook ${event.outcome} (attempt ${event.attempt}${event.statusCode ? `, HTTP ${event.statusCode}` : ''}${event.error ? `, ${event.error.code}` : ''})`;
    case 'finished':
      return `finished (${event.reason})`;
    case 'model_delta':
    case 'assistant_message':
    case 'turn':
    case 'progress':
      return undefined;
  }
}

/**
 * A command's live output as the follow log shows it: each line indented under its step, stderr
 * marked, so it reads apart from the step lines around it.
 */
function outputLines(stream: 'stdout' | 'stderr', chunk: string): string | undefined {
  const text = chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk;
  if (text === '') return undefined;
  const mark = stream === 'stderr' ? '  ! ' : '  | ';
  return text
    .split('\n')
    .map((l) => `${mark}${l}`)
    .join('\n');
}

/** The bar's right-hand text: `thinking · execute-command echo hi`. */
export function barText(state: FollowState): string {
  if (FINAL_STATUSES.includes(state.status)) return state.status;
  const phase = state.status === 'queued' ? 'queued' : state.phase;
  const text = state.action ? `${phase} · ${state.action}` : phase;
  return state.lastOutput && state.phase === 'running-step' ? `${text} · ${state.lastOutput}` : text;
}

/** The closing lines: status, summary, files and where the report is. */
export function finalReport(view: TaskView, links: { fileUrl: (path: string) => string }): string[] {
  const lines: string[] = [];
  const steps = view.steps.length;
  const took =
    view.startedAt && view.finishedAt
      ? ` in ${formatDuration(Date.parse(view.finishedAt) - Date.parse(view.startedAt))}`
      : '';
  lines.push(`${view.status}${took} · ${steps} step${steps === 1 ? '' : 's'} · task ${view.id}`);
  if (view.error) lines.push(`error: ${view.error.code}: ${view.error.message}`);
  const summary = view.result?.summary.trim();
  if (summary) {
    lines.push('', 'Summary:');
    for (const l of summary.split('\n')) lines.push(`  ${l}`);
  }
  const files = view.result?.files ?? [];
  if (files.length > 0) {
    lines.push('', 'Files:');
    for (const f of files) lines.push(`  ${f.path}  ${formatBytes(f.size)}`);
  }
  const report = pickReport(files.map((f) => f.path));
  lines.push('');
  if (report) {
    lines.push(`Report: research files ${view.id} ${report}`);
    lines.push(`        ${links.fileUrl(report)}`);
  } else {
    lines.push(`Files: research files ${view.id}`);
  }
  return lines;
}

/** `report.md` when there is one, else the first Markdown file at the top, else any Markdown file. */
export function pickReport(paths: string[]): string | undefined {
  return (
    paths.find((p) => p === 'report.md') ??
    paths.find((p) => /(^|\/)report\.md$/i.test(p)) ??
    paths.find((p) => !p.includes('/') && p.endsWith('.md') && !/todo/i.test(p)) ??
    paths.find((p) => p.endsWith('.md'))
  );
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Human form of `status <id>`. */
export function statusReport(view: TaskView): string[] {
  const lines = [
    `task      ${view.id}`,
    `status    ${view.status}`,
    `prompt    ${truncate(oneLine(view.prompt), 100)}`,
    `created   ${view.createdAt}`,
  ];
  if (view.startedAt) lines.push(`started   ${view.startedAt}`);
  if (view.finishedAt) lines.push(`finished  ${view.finishedAt}`);
  if (view.tenant) lines.push(`tenant    ${view.tenant}`);
  if (view.workerId) lines.push(`worker    ${view.workerId}`);
  lines.push(`progress  step ${view.progress.step}/${view.progress.maxSteps} · ${view.progress.phase}`);
  if (view.steps.length > 0) {
    lines.push('steps');
    for (const s of view.steps) {
      const extra = [
        s.exitCode !== undefined ? `exit ${s.exitCode}` : '',
        s.durationMs !== undefined ? formatDuration(s.durationMs) : '',
        s.attempts > 1 ? `${s.attempts} attempts` : '',
      ]
        .filter(Boolean)
        .join(', ');
      lines.push(
        `  ${String(s.index + 1).padStart(3)}  ${s.action.padEnd(15)} ${s.status}${extra ? ` (${extra})` : ''}`,
      );
    }
  }
  if (view.error) lines.push(`error     ${view.error.code}: ${view.error.message}`);
  if (view.result) {
    lines.push(`summary   ${truncate(oneLine(view.result.summary), 200)}`);
    if (view.result.files.length > 0) lines.push(`files     ${view.result.files.map((f) => f.path).join(', ')}`);
  }
  return lines;
}

export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

export function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
