/** Pure statistics for the load test: percentiles, histograms, time series. */

export interface Percentiles {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * The p-th percentile (0–100) of ascending `sorted`, interpolating linearly between the two
 * nearest ranks (numpy's default), so p50 of [1, 2] is 1.5. NaN for no values.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p <= 0) return sorted[0]!;
  if (p >= 100) return sorted[sorted.length - 1]!;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (rank - lo);
}

/**
 * Count, min, mean, p50/p95/p99 and max of any values (sorted here). With no values every
 * figure is NaN, which JSON.stringify writes as null.
 */
export function summarize(values: readonly number[]): Percentiles {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { count: 0, min: NaN, mean: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN };
  const sorted = [...finite].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    min: sorted[0]!,
    mean: sum / sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

export interface Bin {
  /** Inclusive lower edge. */
  from: number;
  /** Exclusive upper edge (the last bin includes it). */
  to: number;
  count: number;
}

/**
 * Equal-width bins from min to max. `binCount` defaults to √n clamped to 5…40 (a readable
 * chart for 10 or 10,000 values). All-equal values give one bin.
 */
export function histogram(values: readonly number[], binCount?: number): Bin[] {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return [];
  let min = Infinity;
  let max = -Infinity;
  for (const v of finite) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min === max) return [{ from: min, to: max, count: finite.length }];
  const n = Math.max(1, Math.floor(binCount ?? Math.min(40, Math.max(5, Math.round(Math.sqrt(finite.length))))));
  const width = (max - min) / n;
  const bins: Bin[] = Array.from({ length: n }, (_, i) => ({
    from: min + i * width,
    to: i === n - 1 ? max : min + (i + 1) * width,
    count: 0,
  }));
  for (const v of finite) {
    const i = Math.min(n - 1, Math.floor((v - min) / width));
    bins[i]!.count += 1;
  }
  return bins;
}

export interface RatePoint {
  /** Seconds since the series start, at the bin's start. */
  tSec: number;
  /** Events per second within the bin. */
  perSec: number;
  count: number;
}

/**
 * Events per second over time: timestamps (ms) counted in bins of `binMs` from `startMs` to the
 * last timestamp. Bins with no events are kept (as zeros), so a stall shows as a dip.
 */
export function rateSeries(timestampsMs: readonly number[], startMs: number, binMs: number): RatePoint[] {
  if (timestampsMs.length === 0 || binMs <= 0) return [];
  const last = timestampsMs.reduce((m, v) => Math.max(v, m), -Infinity);
  const n = Math.max(1, Math.floor((last - startMs) / binMs) + 1);
  const counts = new Array<number>(n).fill(0);
  for (const t of timestampsMs) {
    const i = Math.floor((t - startMs) / binMs);
    if (i >= 0 && i < n) counts[i]! += 1;
  }
  return counts.map((count, i) => ({ tSec: (i * binMs) / 1000, perSec: count / (binMs / 1000), count }));
}

/** A bin width giving about `target` bins over `spanMs`, rounded to 100 ms, 250 ms, 500 ms, 1 s, 2 s, 5 s, 10 s, … */
export function niceBinMs(spanMs: number, target = 60): number {
  const raw = Math.max(1, spanMs / target);
  const steps = [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000];
  return steps.find((s) => s >= raw) ?? 600_000;
}
