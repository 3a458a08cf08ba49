#!/usr/bin/env node
// Sums vitest's per-workspace "Tests  N passed (N)" lines from a log into one closing line:
// "summary: N passed, N failed" (", N skipped" when some were).
import { readFileSync } from 'node:fs';

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes are what this strips
const text = readFileSync(process.argv[2] ?? '/dev/stdin', 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
let passed = 0;
let failed = 0;
let skipped = 0;
for (const line of text.split('\n')) {
  const m = /\bTests\s+(.*)\(\d+\)\s*$/.exec(line);
  if (!m) continue;
  for (const part of m[1].split('|')) {
    const [, n, what] = /(\d+)\s+(\w+)/.exec(part.trim()) ?? [];
    if (what === 'passed') passed += Number(n);
    else if (what === 'failed') failed += Number(n);
    else if (what === 'skipped' || what === 'todo') skipped += Number(n);
    else if (what === 'expected') passed += Number(n);
  }
}
console.log(`summary: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
