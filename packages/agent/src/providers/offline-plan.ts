import { z } from 'zod';
import type { AgentMessage } from '../state.js';
import { ANALYSIS_SCRIPT } from './analysis-script.js';
import {
  analysisMove,
  callMove,
  jsonIn,
  listFiles,
  type PlanMove,
  py,
  resultsOfTurn,
  tickPlan,
  todoList,
  writeMove,
  writePlan,
} from './plan-history.js';

const TickerFigures = z.object({
  startPrice: z.number(),
  endPrice: z.number(),
  totalReturnPct: z.number(),
  annualVolatilityPct: z.number(),
  maxDrawdownPct: z.number(),
  sharpe: z.number(),
});

/** What analysis.py prints; anything else found in the history is ignored. */
const AnalysisResults = z.object({
  source: z.string(),
  seed: z.number(),
  tradingDays: z.number(),
  period: z.object({ start: z.string(), end: z.string() }),
  tickers: z.record(z.string(), TickerFigures),
  best: z.object({ ticker: z.string(), totalReturnPct: z.number() }),
  worst: z.object({ ticker: z.string(), totalReturnPct: z.number() }),
  mostVolatile: z.object({ ticker: z.string(), annualVolatilityPct: z.number() }),
  equalWeight: z.object({ totalReturnPct: z.number(), annualVolatilityPct: z.number() }),
});
type AnalysisResults = z.infer<typeof AnalysisResults>;

const TODO_ITEMS = [
  'Generate a deterministic market dataset in the sandbox (analysis.py, seed 42)',
  "Compute returns, volatility, drawdowns and Sharpe ratios with Python's standard library",
  'Read the computed figures back from results.json',
  'Write report.md quoting the computed figures',
] as const;

const todo = (ticked: readonly boolean[]): string => todoList(TODO_ITEMS, ticked);

/** The tool results that answered the n-th assistant turn (0-based), as one text. */
function textOfTurn(messages: readonly AgentMessage[], n: number): string | undefined {
  const results = resultsOfTurn(messages, n);
  return results.length > 0 ? results.join('\n') : undefined;
}

/** Finds the analysis JSON in a tool result (read-file content or command stdout). */
const extractResults = (text: string | undefined) => jsonIn(text, AnalysisResults);

function succeeded(text: string | undefined): boolean {
  return text !== undefined && !/status="error"|: error \(|^error \(/m.test(text);
}

function signed(n: number): string {
  return `${n > 0 ? '+' : ''}${py(n)}%`;
}

function report(prompt: string, r: AnalysisResults | undefined): string {
  const task = prompt.trim().split('\n')[0] ?? '';
  if (!r) {
    return [
      '# Market research report',
      '',
      `Task: ${task}`,
      '',
      "The analysis output could not be read back (see the task's step results), so this report quotes no figures.",
      '',
    ].join('\n');
  }
  const rows = Object.entries(r.tickers).map(
    ([t, f]) =>
      `| ${t} | ${py(f.startPrice)} | ${py(f.endPrice)} | ${py(f.totalReturnPct)} | ${py(f.annualVolatilityPct)} | ${py(f.maxDrawdownPct)} | ${py(f.sharpe)} |`,
  );
  return [
    '# Market research report',
    '',
    `Task: ${task}`,
    '',
    `> Data: ${r.source}, ${r.tradingDays} trading days from ${r.period.start} to ${r.period.end}.`,
    '> The sandbox has no network access, so these are simulated prices, not live market quotes.',
    '> Every figure below is quoted from results.json as printed by analysis.py.',
    '',
    '## Key findings',
    '',
    `- Best performer: **${r.best.ticker}**, total return ${signed(r.best.totalReturnPct)}.`,
    `- Worst performer: **${r.worst.ticker}**, total return ${signed(r.worst.totalReturnPct)}.`,
    `- Most volatile: **${r.mostVolatile.ticker}**, annualised volatility ${py(r.mostVolatile.annualVolatilityPct)}%.`,
    `- Equal-weight portfolio: total return ${signed(r.equalWeight.totalReturnPct)}, annualised volatility ${py(r.equalWeight.annualVolatilityPct)}%.`,
    '',
    '## Figures by index',
    '',
    '| Index | Start price | End price | Total return % | Annual volatility % | Max drawdown % | Sharpe |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    '## Method',
    '',
    "Daily prices follow a seeded geometric random walk (Python's `random.Random(42)`), saved to `data/prices.csv`.",
    'Returns are daily percentage changes; volatility and Sharpe ratio (risk-free rate 0) are annualised with 252 days;',
    'max drawdown is the deepest fall from a running peak. The equal-weight portfolio rebalances daily.',
    '',
    '## Opportunities and risks',
    '',
    `- Momentum favours ${r.best.ticker}; diversifying across the indices cut volatility to ${py(r.equalWeight.annualVolatilityPct)}% for the equal-weight mix.`,
    `- ${r.worst.ticker} shows the weakest trend (${signed(r.worst.totalReturnPct)}); treat it as the main risk in this sample.`,
    '- Re-run with live data before acting on any of this.',
    '',
    '## Files',
    '',
    '- `analysis.py` — the analysis',
    '- `data/prices.csv` — the generated prices',
    '- `results.json` — the computed figures',
    '- `todo.md` — the plan, ticked as steps were verified',
    '',
  ].join('\n');
}

/**
 * The built-in research plan, one tool call per turn. The move depends only on the history
 * (turn n is the n-th assistant message), so a resumed task continues where it stopped.
 */
export function planMove(prompt: string, messages: readonly AgentMessage[]): PlanMove {
  const turn = messages.filter((m) => m.role === 'assistant').length;
  switch (turn) {
    case 0:
      return writePlan(todo([]));
    case 1:
      return writeMove(
        'The sandbox has no network, so the analysis generates a deterministic dataset itself.',
        'analysis.py',
        ANALYSIS_SCRIPT,
      );
    case 2:
      return analysisMove('Running the analysis in the sandbox.', 'python3 analysis.py');
    case 3:
      return callMove('Reading the computed figures back.', { action: 'read-file', filePath: 'results.json' });
    case 4: {
      const results = extractResults(textOfTurn(messages, 3)) ?? extractResults(textOfTurn(messages, 2));
      return writeMove(
        results
          ? 'Writing report.md with the figures from results.json.'
          : 'The figures could not be read; the report says so.',
        'report.md',
        report(prompt, results),
      );
    }
    case 5: {
      const ran = /exit code: 0\b/.test(textOfTurn(messages, 2) ?? '');
      const read = extractResults(textOfTurn(messages, 3)) !== undefined;
      const reported = read && succeeded(textOfTurn(messages, 4));
      return tickPlan(todo([ran, ran, read, reported]));
    }
    case 6:
      return listFiles();
    default: {
      const results = extractResults(textOfTurn(messages, 3));
      const figures = results
        ? ` Best: ${results.best.ticker} ${signed(results.best.totalReturnPct)}, worst: ${results.worst.ticker} ${signed(results.worst.totalReturnPct)}, equal-weight portfolio ${signed(results.equalWeight.totalReturnPct)}.`
        : ' The analysis output could not be read, so the report quotes no figures.';
      return {
        kind: 'answer',
        text: `Research complete. The report is in report.md (synthetic data generated in the sandbox by analysis.py; figures in results.json).${figures}`,
      };
    }
  }
}
