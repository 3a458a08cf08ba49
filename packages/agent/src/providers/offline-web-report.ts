import type { SourceAnalysis } from './offline-web-plan.js';
import { py } from './plan-history.js';

export type SearchReading =
  | { ok: true; provider: string; hits: { title: string; url: string }[] }
  | { ok: false; error: string; hits: { title: string; url: string }[] };

export type FetchedSource =
  | { ok: true; url: string; title?: string; contentType: string; bytes: number; sha256: string; savedAs: string }
  | { ok: false; url: string; error: string };

/**
 * Text from the web in the report: one line, bounded, without the characters that would make
 * it markup (a table cell, a link, a heading). It is quoted as a name, never acted on.
 */
function quoteWeb(text: string, max = 80): string {
  const plain = text
    .replace(/[\p{Cc}<>[\]()|*`#\\]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return plain.length > max ? `${plain.slice(0, max - 1)}…` : plain;
}

/** A URL in `<…>`: whatever would end or break the autolink is percent-encoded. */
function link(url: string): string {
  return `<${url.replace(/[<>\s]/g, (c) => encodeURIComponent(c))}>`;
}

function signedPct(n: number | null): string {
  if (n === null) return '—';
  return `${n > 0 ? '+' : ''}${py(n)}%`;
}

type Table = Extract<SourceAnalysis['sources'][number], { kind: 'table' }>;

function tableSection(n: number, source: Extract<FetchedSource, { ok: true }>, t: Table): string[] {
  const label = (v: string | null | undefined): string => (v ? ` (${quoteWeb(v, 24)})` : '');
  return [
    `### [${n}] ${quoteWeb(source.title ?? source.savedAs)}`,
    '',
    `${t.rows} rows in \`${source.savedAs}\`${t.labelColumn ? `, labelled by ${quoteWeb(t.labelColumn, 40)}` : ''}.`,
    '',
    '| Column | Values | First | Last | Change | Min | Max | Mean |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...t.columns.map(
      (c) =>
        `| ${quoteWeb(c.name, 40)} | ${c.count} | ${py(c.first)}${label(t.firstLabel)} | ${py(c.last)}${label(t.lastLabel)} | ${signedPct(c.changePct)} | ${py(c.min)} | ${py(c.max)} | ${py(c.mean)} |`,
    ),
    '',
  ];
}

/**
 * report.md of the web plan. Figures come from analyze_sources.py's JSON, URLs and hashes from
 * the worker's fetch results; of the pages' own text only titles and column names appear, as
 * quoted names.
 */
export function webReport(input: {
  prompt: string;
  query: string;
  search: SearchReading;
  sources: FetchedSource[];
  analysis: SourceAnalysis | undefined;
}): string {
  const { search, sources, analysis } = input;
  const task = input.prompt.trim().split('\n')[0] ?? '';
  const fetched = sources.flatMap((s, i) => (s.ok ? [{ n: i + 1, s }] : []));
  const byPath = new Map((analysis?.sources ?? []).map((a) => [a.path, a]));
  const tables = fetched.flatMap(({ n, s }) => {
    const a = byPath.get(s.savedAs);
    return a?.kind === 'table' && a.columns.length > 0 ? [tableSection(n, s, a)] : [];
  });
  const others = fetched.flatMap(({ n, s }) => {
    const a = byPath.get(s.savedAs);
    if (a?.kind === 'table' && a.columns.length > 0) return [];
    const what =
      a?.kind === 'text'
        ? `${a.words} words`
        : a?.kind === 'json'
          ? `JSON ${a.type}, ${a.bytes} bytes`
          : a?.kind === 'error'
            ? 'could not be analysed'
            : `${s.bytes} bytes`;
    return [`- [${n}] ${quoteWeb(s.title ?? s.savedAs)} — ${s.contentType}, ${what} (\`${s.savedAs}\`)`];
  });
  const searchLine = search.ok
    ? `A web search (${quoteWeb(search.provider, 20)}) for "${quoteWeb(input.query, 200)}" found ${search.hits.length} result${search.hits.length === 1 ? '' : 's'}; the top ${sources.length} were fetched and ${fetched.length} saved under \`sources/\`.`
    : `The web search for "${quoteWeb(input.query, 200)}" failed (${quoteWeb(search.error, 200)}), so no page was fetched.`;
  return [
    '# Research report',
    '',
    `Task: ${task}`,
    '',
    `> ${searchLine}`,
    !analysis
      ? '> The analysis of the fetched files did not produce results (see the step results), so this report quotes no figures.'
      : tables.length > 0
        ? '> Every figure below is computed by `analyze_sources.py` over the saved files (`source_analysis.json`).'
        : '> `analyze_sources.py` found no table among the saved files (`source_analysis.json`), so this report quotes no figures.',
    '> Text fetched from the web was treated as data: nothing in it was followed as an instruction.',
    '',
    '## Key figures',
    '',
    ...(tables.length > 0 ? tables.flat() : ['No fetched source held a table to compute figures from.', '']),
    ...(others.length > 0 ? ['## Other sources', '', ...others, ''] : []),
    '## Method',
    '',
    `The offline model searched the web, fetched the top results with web-fetch (which saved them under \`sources/\` with a \`.meta.json\` of URL, title, fetch time and sha256) and ran \`analyze_sources.py\` over them with Python's standard library: for each table, the first and last value of every numeric column, its change, minimum, maximum and mean. It cites the pages; it does not read them for meaning.`,
    '',
    '## Sources',
    '',
    ...(fetched.length > 0
      ? fetched.map(
          ({ n, s }) =>
            `${n}. ${quoteWeb(s.title ?? s.url)} — ${link(s.url)} (saved as \`${s.savedAs}\`, sha256 \`${s.sha256}\`)`,
        )
      : ['No page could be fetched.']),
    ...sources.flatMap((s) => (s.ok ? [] : [`- Not fetched: ${link(s.url)} (${quoteWeb(s.error, 200)})`])),
    '',
  ].join('\n');
}
