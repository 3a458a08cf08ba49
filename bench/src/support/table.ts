import type { Machine } from './machine.js';

export type Figures = Record<string, unknown>;

interface Target {
  text: string;
  met: (value: number, figures: Figures) => boolean;
}

const num = (figures: Figures, path: string): number | undefined => {
  let v: unknown = figures;
  for (const k of path.split('.'))
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === 'number' ? v : undefined;
};

/** RSS counts as flat when it grew by at most this fraction over the run. */
const FLAT_GROWTH = 0.1;
const flat = (part: string) => (after: number, f: Figures) =>
  after <= (num(f, `memory.${part}.before`) ?? 0) * (1 + FLAT_GROWTH);

/** The targets, shown beside the figures (never asserted: a benchmark reports). */
const TARGETS: Record<string, Target> = {
  'queue.ratioVsRunner': { text: '≥ 0.5 of the runner alone', met: (v) => v >= 0.5 },
  // #11: with a uid per task, still ≤ 2 ms; the figures before per-task uids (one uid for every
  // command, 2026-11-27) were 1.18 ms and 1.13 ms.
  'step.overheadP50Ms': { text: '≤ 2 ms (1.18 before per-task uids, 2026-11-27)', met: (v) => v <= 2 },
  'sandbox.runnerP50Ms': { text: '≤ 2 ms (1.13 before per-task uids, 2026-11-27)', met: (v) => v <= 2 },
  'sandbox.speedup': { text: '≥ 15 × (exec / runner)', met: (v) => v >= 15 },
  'api.ratioVsHealthz': { text: '≥ 0.6 of GET /healthz', met: (v) => v >= 0.6 },
  'api.batchRatio': { text: '≥ 0.5 of raw addBulk', met: (v) => v >= 0.5 },
  'llm.xml.efficiency': { text: '≥ 0.9', met: (v) => v >= 0.9 },
  'llm.native.efficiency': { text: '≥ 0.9', met: (v) => v >= 0.9 },
  'llm.xml.cpuMsPerStep': { text: '≤ 0.5 ms', met: (v) => v <= 0.5 },
  'llm.native.cpuMsPerStep': { text: '≤ 0.5 ms', met: (v) => v <= 0.5 },
  'llm.xml.rssMiBPerTask': { text: '≤ 0.5 MiB', met: (v) => v <= 0.5 },
  'llm.native.rssMiBPerTask': { text: '≤ 0.5 MiB', met: (v) => v <= 0.5 },
  'llm.xml.overheadP99Ms': { text: '≤ 10 ms', met: (v) => v <= 10 },
  'llm.native.overheadP99Ms': { text: '≤ 10 ms', met: (v) => v <= 10 },
  'llm.xml.pickupP50Ms': { text: '≤ 5 ms', met: (v) => v <= 5 },
  'llm.native.pickupP50Ms': { text: '≤ 5 ms', met: (v) => v <= 5 },
  'claim.warmP50Ms': { text: '≤ 50 ms', met: (v) => v <= 50 },
  'claim.coldP50Ms': { text: '≤ 1,000 ms', met: (v) => v <= 1_000 },
  'claim.maxIdleSeen': { text: '≤ pool size', met: (v, f) => v <= (num(f, 'claim.poolSize') ?? 0) },
  'api.acceptedPerSec': { text: '≈ 3,000/s here', met: (v) => v >= 3_000 },
  'scaling.efficiency4': { text: '≥ 0.8', met: (v) => v >= 0.8 },
  'memory.workerRssMb.after': { text: `flat (≤ +${FLAT_GROWTH * 100}%)`, met: flat('workerRssMb') },
  'memory.apiRssMb.after': { text: `flat (≤ +${FLAT_GROWTH * 100}%)`, met: flat('apiRssMb') },
  'memory.workerRssMb.afterTwice': { text: `flat (≤ +${FLAT_GROWTH * 100}%)`, met: flat('workerRssMb') },
  'memory.apiRssMb.afterTwice': { text: `flat (≤ +${FLAT_GROWTH * 100}%)`, met: flat('apiRssMb') },
};

function rows(figures: Figures): [string, string, string, string][] {
  const out: [string, string, string, string][] = [];
  const walk = (path: string, v: unknown) => {
    if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) walk(path ? `${path}.${k}` : k, child);
      return;
    }
    const target =
      TARGETS[path] ??
      (/\.(lost|failed|rejected|non2xx|errors|failedOrLost\.\d+)$/.test(path)
        ? { text: '0', met: (n: number) => n === 0 }
        : undefined);
    const verdict = target && typeof v === 'number' ? (target.met(v, figures) ? 'met' : 'MISSED') : '';
    out.push([
      path,
      typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: 3 }) : String(v),
      target?.text ?? '',
      verdict,
    ]);
  };
  for (const [part, v] of Object.entries(figures)) if (part !== 'machine') walk(part, v);
  return out;
}

/** A plain-text table: figure, value, target, whether it was met. */
export function renderTable(figures: Figures, m: Machine): string {
  const header: [string, string, string, string] = ['figure', 'value', 'target', ''];
  const body = rows(figures);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [
    `machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGb} GB, Node ${m.node}, ${m.date}, load average ${m.loadAvg.join(' ')}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
  ].join('\n');
}
