import { z } from 'zod';
import type { AgentMessage } from '../state.js';
import {
  analysisMove,
  callMove,
  jsonIn,
  listFiles,
  type PlanMove,
  stepOfTurn,
  tickPlan,
  todoList,
  writeMove,
  writePlan,
} from './plan-history.js';
import { WEB_ANALYSIS_SCRIPT } from './web-analysis-script.js';
import { type FetchedSource, type SearchReading, webReport } from './offline-web-report.js';

/** Pages the plan fetches from the top of the search results. */
export const WEB_PLAN_FETCHES = 3;
const SEARCH_RESULTS = 5;

const ColumnFigures = z.object({
  name: z.string(),
  count: z.number(),
  first: z.number(),
  last: z.number(),
  min: z.number(),
  max: z.number(),
  mean: z.number(),
  changePct: z.number().nullable(),
});

/** What analyze_sources.py prints; anything else found in the history is ignored. */
export const SourceAnalysis = z.object({
  script: z.literal('analyze_sources.py'),
  sources: z.array(
    z.union([
      z.object({
        path: z.string(),
        kind: z.literal('table'),
        rows: z.number(),
        labelColumn: z.string().nullable().optional(),
        firstLabel: z.string().nullable().optional(),
        lastLabel: z.string().nullable().optional(),
        columns: z.array(ColumnFigures),
      }),
      z.object({ path: z.string(), kind: z.literal('text'), bytes: z.number(), words: z.number(), lines: z.number() }),
      z.object({ path: z.string(), kind: z.literal('json'), type: z.string(), bytes: z.number() }),
      z.object({ path: z.string(), kind: z.literal('error'), error: z.string() }),
    ]),
  ),
});
export type SourceAnalysis = z.infer<typeof SourceAnalysis>;

const TODO_ITEMS = [
  'Search the web for sources on the task',
  `Fetch the top ${WEB_PLAN_FETCHES} results and keep them under sources/`,
  'Analyse the fetched data in the sandbox (analyze_sources.py, standard library only)',
  'Write report.md citing the URL of every source',
] as const;

const todo = (ticked: readonly boolean[]): string => todoList(TODO_ITEMS, ticked);

/** The task's first line, as a search query. */
export function searchQuery(prompt: string): string {
  const line = prompt.trim().split('\n')[0]?.replace(/\s+/g, ' ').trim() ?? '';
  return (line || 'market research').slice(0, 200);
}

/**
 * The URLs of a search result as web-search's description lists them: each hit is exactly three
 * lines (`[i] title`, `    URL: …`, `    snippet`), so the URL is read by position and a snippet
 * that reads "URL: …" is never taken for one.
 */
function readSearch(messages: readonly AgentMessage[]): SearchReading {
  const step = stepOfTurn(messages, 1);
  if (!step) return { ok: false, error: 'the search did not run', hits: [] };
  if (!step.ok) return { ok: false, error: `${step.code}: ${step.message}`, hits: [] };
  const lines = step.body.split('\n');
  const provider = /^\d+ results? from (\S+) for /.exec(lines[0] ?? '')?.[1] ?? 'the search provider';
  const hits: SearchReading['hits'] = [];
  let at = lines.findIndex((l) => l.startsWith('[1] '));
  for (let i = 1; at >= 0 && at + 2 < lines.length; i++, at += 3) {
    const title = lines[at] ?? '';
    const url = /^ {4}URL: (\S+)$/.exec(lines[at + 1] ?? '')?.[1];
    if (!title.startsWith(`[${i}] `) || !url) break;
    hits.push({ title: title.slice(`[${i}] `.length), url });
  }
  return { ok: true, provider, hits };
}

const FETCHED =
  /^fetched (\S+) \(HTTP (\d+), ([^,]+), (\d+) bytes, sha256 ([0-9a-f]{64})\) and saved it as (sources\/[A-Za-z0-9._-]+)$/;

/** What the fetch of turn `n` returned: the header line is the worker's, the title the page's. */
function readFetch(messages: readonly AgentMessage[], n: number, requested: string): FetchedSource {
  const step = stepOfTurn(messages, n);
  if (!step) return { ok: false, url: requested, error: 'not run' };
  if (!step.ok) return { ok: false, url: requested, error: `${step.code}: ${step.message}` };
  const lines = step.body.split('\n');
  const head = FETCHED.exec(lines[0] ?? '');
  if (!head) return { ok: false, url: requested, error: 'unreadable fetch result' };
  const open = lines.findIndex((l) => l.startsWith('<untrusted-content'));
  const titleLine = open >= 0 ? lines[open + 2] : undefined;
  return {
    ok: true,
    url: head[1] ?? requested,
    contentType: head[3] ?? '',
    bytes: Number(head[4]),
    sha256: head[5] ?? '',
    savedAs: head[6] ?? '',
    ...(titleLine?.startsWith('Title: ') ? { title: titleLine.slice('Title: '.length) } : {}),
  };
}

/** Finds the analysis JSON in the command's output. */
function readAnalysis(messages: readonly AgentMessage[], n: number): SourceAnalysis | undefined {
  const step = stepOfTurn(messages, n);
  if (!step?.ok || !/^exit code: 0\b/.test(step.body)) return undefined;
  return jsonIn(step.body, SourceAnalysis);
}

/**
 * The built-in research plan when the web tools are offered: todo.md, a search, fetches of the
 * top results, a standard-library analysis of what was fetched, report.md citing every URL,
 * todo.md ticked, the files listed. The moves depend only on the history (turn n is the n-th
 * assistant message) and read from web results only the URLs, the worker's header lines and
 * the analysis' JSON — never the pages' words — so an instruction planted in a page changes
 * nothing.
 */
export function webPlanMove(prompt: string, messages: readonly AgentMessage[]): PlanMove {
  const turn = messages.filter((m) => m.role === 'assistant').length;
  const query = searchQuery(prompt);
  if (turn === 0) return writePlan(todo([]));
  if (turn === 1)
    return callMove('Searching the web for sources.', { action: 'web-search', query, maxResults: SEARCH_RESULTS });
  const search = readSearch(messages);
  const targets = search.hits.slice(0, WEB_PLAN_FETCHES);
  const fetchTurn = (i: number): number => 2 + i;
  const analysisTurn = 2 + targets.length;
  const target = targets[turn - 2];
  if (target)
    return callMove(`Fetching result ${turn - 1} of ${targets.length}; web-fetch saves it under sources/.`, {
      action: 'web-fetch',
      url: target.url,
    });
  const sources = targets.map((t, i) => readFetch(messages, fetchTurn(i), t.url));
  const saved = sources.flatMap((s) => (s.ok ? [s.savedAs] : []));
  switch (turn - analysisTurn) {
    case 0:
      return writeMove(
        'Writing the analysis of the fetched files (Python standard library only).',
        'analyze_sources.py',
        WEB_ANALYSIS_SCRIPT,
      );
    case 1:
      // Only names of the form sources/NNN-slug.ext reach the command line (see FETCHED).
      return analysisMove(
        'Running the analysis over what was fetched.',
        ['python3 analyze_sources.py', ...saved].join(' '),
      );
    case 2: {
      const analysis = readAnalysis(messages, analysisTurn + 1);
      return writeMove(
        'Writing report.md with the computed figures and the sources it cites.',
        'report.md',
        webReport({ prompt, query, search, sources, analysis }),
      );
    }
    case 3: {
      const analysed = readAnalysis(messages, analysisTurn + 1) !== undefined;
      const reported = stepOfTurn(messages, analysisTurn + 2)?.ok === true;
      return tickPlan(todo([search.ok && search.hits.length > 0, saved.length > 0, analysed, reported]));
    }
    case 4:
      return listFiles();
    default: {
      const cited = sources.filter((s) => s.ok).length;
      const why = search.ok ? '' : ` The search failed (${search.error}).`;
      return {
        kind: 'answer',
        text: `Research complete. The report is in report.md, citing ${cited} source${cited === 1 ? '' : 's'} fetched from the web and saved under sources/ (figures computed by analyze_sources.py, in source_analysis.json).${why}`,
      };
    }
  }
}
