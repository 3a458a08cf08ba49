import { describe, expect, it } from 'vitest';
import { histogram, niceBinMs, percentile, rateSeries, summarize } from './stats.js';

describe('percentile', () => {
  it('interpolates between nearest ranks', () => {
    expect(percentile([1, 2], 50)).toBe(1.5);
    expect(percentile([10], 99)).toBe(10);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 50)).toBeCloseTo(50.5);
    expect(percentile(hundred, 95)).toBeCloseTo(95.05);
    expect(percentile(hundred, 99)).toBeCloseTo(99.01);
    expect(percentile(hundred, 0)).toBe(1);
    expect(percentile(hundred, 100)).toBe(100);
  });

  it('is NaN for no values', () => {
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('summarize', () => {
  it('sorts, ignores non-finite values and reports count, mean and percentiles', () => {
    const s = summarize([5, 1, NaN, 3, Infinity, 2, 4]);
    expect(s).toEqual({ count: 5, min: 1, mean: 3, p50: 3, p95: 4.8, p99: expect.closeTo(4.96, 5), max: 5 });
  });

  it('gives NaN figures (null in JSON) for no values', () => {
    const s = summarize([]);
    expect(s.count).toBe(0);
    expect(JSON.parse(JSON.stringify(s))).toEqual({
      count: 0,
      min: null,
      mean: null,
      p50: null,
      p95: null,
      p99: null,
      max: null,
    });
  });
});

describe('histogram', () => {
  it('spreads values over equal-width bins and counts every value once', () => {
    const bins = histogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 10], 5);
    expect(bins.map((b) => b.count)).toEqual([2, 2, 2, 2, 2]);
    expect(bins[0]).toEqual({ from: 0, to: 2, count: 2 });
    expect(bins[4]!.to).toBe(10);
    expect(bins.reduce((s, b) => s + b.count, 0)).toBe(10);
  });

  it('puts the maximum in the last bin and picks about √n bins by default', () => {
    const values = Array.from({ length: 400 }, (_, i) => i);
    const bins = histogram(values);
    expect(bins).toHaveLength(20);
    expect(bins[19]!.count).toBe(20);
  });

  it('handles no values and all-equal values', () => {
    expect(histogram([])).toEqual([]);
    expect(histogram([7, 7, 7])).toEqual([{ from: 7, to: 7, count: 3 }]);
  });
});

describe('rateSeries', () => {
  it('counts events per bin as a rate and keeps empty bins', () => {
    const series = rateSeries([1_000, 1_100, 1_900, 3_500], 1_000, 1_000);
    expect(series).toEqual([
      { tSec: 0, perSec: 3, count: 3 },
      { tSec: 1, perSec: 0, count: 0 },
      { tSec: 2, perSec: 1, count: 1 },
    ]);
    expect(rateSeries([1_000, 1_200], 1_000, 500)[0]).toEqual({ tSec: 0, perSec: 4, count: 2 });
    expect(rateSeries([], 0, 1_000)).toEqual([]);
  });

  it('picks round bin widths', () => {
    expect(niceBinMs(3_000)).toBe(100);
    expect(niceBinMs(60_000)).toBe(1_000);
    expect(niceBinMs(600_000)).toBe(10_000);
  });
});
