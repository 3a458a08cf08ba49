import type { LoadtestResult } from './loadtest.js';
import type { Bin, Percentiles, RatePoint } from './stats.js';

/** HTML text escaping for element content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Plain number text for the report: fixed digits, `–` for NaN/∞. */
export function fmt(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

const W = 720;
const H = 260;
const PAD = { left: 56, right: 16, top: 16, bottom: 40 };

/** An axis label: whole numbers as such, fractions with one decimal. */
function tick(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** A round upper bound for an axis: 1, 2, 2.5, 5 × 10^k. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const pow = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= v) return m * pow;
  return 10 * pow;
}

/** Throughput over time: completed/s (and accepted/s) per time bin, as polylines. */
export function throughputSvg(completed: readonly RatePoint[], accepted: readonly RatePoint[], binMs: number): string {
  const all = [...completed, ...accepted];
  if (all.length === 0) return emptySvg('no completed tasks');
  const tMax = Math.max(...all.map((p) => p.tSec)) + binMs / 1000;
  const yMax = niceMax(Math.max(...all.map((p) => p.perSec)));
  const x = (t: number) => PAD.left + (t / tMax) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  // Each point sits at the middle of its bin.
  const line = (pts: readonly RatePoint[]) =>
    pts.map((p) => `${fmt(x(p.tSec + binMs / 2000), 1)},${fmt(y(p.perSec), 1)}`).join(' ');
  const parts = [
    axes(yMax, tick, tMax, 's'),
    accepted.length > 0
      ? `<polyline fill="none" stroke="#9ca3af" stroke-width="1.5" stroke-dasharray="4 3" points="${line(accepted)}"/>`
      : '',
    `<polyline fill="none" stroke="#2563eb" stroke-width="2" points="${line(completed)}"/>`,
    `<text x="${W - PAD.right}" y="${PAD.top + 4}" text-anchor="end" font-size="12" fill="#2563eb">completed/s</text>`,
    accepted.length > 0
      ? `<text x="${W - PAD.right}" y="${PAD.top + 20}" text-anchor="end" font-size="12" fill="#6b7280">accepted/s</text>`
      : '',
    `<text x="12" y="${(H - PAD.bottom + PAD.top) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 12 ${(H - PAD.bottom + PAD.top) / 2})">tasks/s</text>`,
    `<text x="${(W + PAD.left) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">seconds since the first task was created (bins of ${fmt(binMs / 1000, binMs < 1000 ? 2 : 0)} s)</text>`,
  ];
  return svg('Throughput over time', parts.join(''));
}

/** End-to-end latency histogram as bars. */
export function histogramSvg(bins: readonly Bin[]): string {
  if (bins.length === 0) return emptySvg('no completed tasks');
  const from = bins[0]!.from;
  const to = bins[bins.length - 1]!.to;
  const span = to - from || 1;
  const yMax = niceMax(Math.max(...bins.map((b) => b.count)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const bw = plotW / bins.length;
  const bars = bins
    .map((b, i) => {
      const h = (b.count / yMax) * plotH;
      return `<rect x="${fmt(PAD.left + i * bw + 1, 1)}" y="${fmt(H - PAD.bottom - h, 1)}" width="${fmt(Math.max(1, bw - 2), 1)}" height="${fmt(h, 1)}" fill="#10b981"><title>${escapeHtml(`${fmt(b.from, 0)}–${fmt(b.to, 0)} ms: ${b.count}`)}</title></rect>`;
    })
    .join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (f) =>
        `<text x="${fmt(PAD.left + f * plotW, 1)}" y="${H - PAD.bottom + 16}" text-anchor="middle" font-size="11">${fmt(from + f * span, 0)}</text>`,
    )
    .join('');
  const parts = [
    axes(yMax, tick, undefined, ''),
    bars,
    ticks,
    `<text x="12" y="${(H - PAD.bottom + PAD.top) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 12 ${(H - PAD.bottom + PAD.top) / 2})">tasks</text>`,
    `<text x="${(W + PAD.left) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">end-to-end latency (ms)</text>`,
  ];
  return svg('End-to-end latency histogram', parts.join(''));
}

function axes(yMax: number, yLabel: (v: number) => string, tMax: number | undefined, unit: string): string {
  const plotW = W - PAD.left - PAD.right;
  const out: string[] = [];
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const yy = H - PAD.bottom - f * (H - PAD.top - PAD.bottom);
    out.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${fmt(yy, 1)}" y2="${fmt(yy, 1)}" stroke="#e5e7eb"/>`);
    out.push(
      `<text x="${PAD.left - 6}" y="${fmt(yy + 4, 1)}" text-anchor="end" font-size="11">${yLabel(f * yMax)}</text>`,
    );
    if (tMax !== undefined) {
      out.push(
        `<text x="${fmt(PAD.left + f * plotW, 1)}" y="${H - PAD.bottom + 16}" text-anchor="middle" font-size="11">${fmt(f * tMax, tMax < 10 ? 1 : 0)}${unit}</text>`,
      );
    }
  }
  out.push(`<line x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#6b7280"/>`);
  out.push(
    `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${H - PAD.bottom}" y2="${H - PAD.bottom}" stroke="#6b7280"/>`,
  );
  return out.join('');
}

function svg(title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}"><title>${escapeHtml(title)}</title>${body}</svg>`;
}

function emptySvg(message: string): string {
  return svg(
    message,
    `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="14" fill="#6b7280">${escapeHtml(message)}</text>`,
  );
}

function latencyRow(label: string, p: Percentiles): string {
  return `<tr><th scope="row">${escapeHtml(label)}</th><td>${p.count}</td><td>${fmt(p.p50, 0)}</td><td>${fmt(p.p95, 0)}</td><td>${fmt(p.p99, 0)}</td><td>${fmt(p.mean, 0)}</td><td>${fmt(p.max, 0)}</td></tr>`;
}

/** A self-contained page: figures, throughput over time and a latency histogram, no external assets. */
export function renderReport(r: LoadtestResult): string {
  const mode =
    r.mode.kind === 'replay'
      ? `${r.mode.steps}-step replay tasks`
      : `prompts from ${r.mode.file ?? 'a list'} (${r.mode.count})`;
  const figures: [string, string][] = [
    ['tasks', String(r.tasks)],
    ['completed', String(r.completed)],
    [
      'failed',
      `${r.failed} (failed ${r.failedByReason.failed}, cancelled ${r.failedByReason.cancelled}, refused at submit ${r.failedByReason.submitError})`,
    ],
    ['lost', String(r.lost)],
    ['submit rate', `${fmt(r.submitRatePerSec)} tasks/s (${r.submitted} in ${fmt(r.submitDurationSec, 2)} s)`],
    [
      'throughput',
      `${fmt(r.throughputTasksPerSec, 2)} tasks/s · ${fmt(r.throughputStepsPerSec, 2)} steps/s over ${fmt(r.windowSec, 2)} s`,
    ],
    [
      'per-step overhead',
      `p50 ${fmt(r.perStepOverheadMs.p50)} ms · p95 ${fmt(r.perStepOverheadMs.p95)} ms · mean ${fmt(r.perStepOverheadMs.mean)} ms (once running: p50 ${fmt(r.perStepRunOverheadMs.p50)} ms)`,
    ],
    ['run', `${r.startedAt} → ${r.finishedAt} (${fmt(r.durationSec, 1)} s)`],
  ];
  const lost =
    r.lost > 0
      ? `<p class="warn">Lost tasks (first ${Math.min(r.lostIds.length, 50)}): ${r.lostIds.map((id) => `<code>${escapeHtml(id)}</code>`).join(', ')}</p>`
      : '';
  const errors =
    r.errors.submitSamples.length > 0
      ? `<p class="warn">Submit errors: ${r.errors.submitSamples.map((e) => `<code>${escapeHtml(e)}</code>`).join('; ')}</p>`
      : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Load test: ${r.completed}/${r.tasks} completed, ${fmt(r.throughputTasksPerSec, 2)} tasks/s</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 760px; padding: 0 1rem; color: #111827; }
h1 { font-size: 1.4rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e7eb; }
td { font-variant-numeric: tabular-nums; }
.sub { color: #6b7280; margin-top: 0; }
.warn { color: #b45309; }
svg { max-width: 100%; height: auto; font-family: inherit; }
</style>
</head>
<body>
<h1>Load test report</h1>
<p class="sub">${escapeHtml(`${r.tasks} ${mode} against ${r.url}, concurrency ${r.concurrency}`)}</p>
<h2>Figures</h2>
<table id="figures">
<tbody>
${figures.map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('\n')}
</tbody>
</table>
<h2>Latency (ms)</h2>
<table id="latency">
<thead><tr><th scope="col">interval</th><th scope="col">n</th><th scope="col">p50</th><th scope="col">p95</th><th scope="col">p99</th><th scope="col">mean</th><th scope="col">max</th></tr></thead>
<tbody>
${latencyRow('queued → started', r.latencyMs.queuedToStarted)}
${latencyRow('started → finished', r.latencyMs.startedToFinished)}
${latencyRow('end to end', r.latencyMs.endToEnd)}
${latencyRow('submit request', r.latencyMs.submitRequest)}
</tbody>
</table>
${lost}${errors}
<h2>Throughput over time</h2>
<figure>${throughputSvg(r.series.completedPerSec, r.series.acceptedPerSec, r.series.binMs)}</figure>
<h2>End-to-end latency histogram</h2>
<figure>${histogramSvg(r.histogram.endToEndMs)}</figure>
<p class="sub">Latencies come from the API's createdAt / startedAt / finishedAt of completed tasks. The raw figures are in loadtest.json beside this file.</p>
</body>
</html>
`;
}
