/**
 * `concurrency` callers, each calling `call` back to back until `durationMs` has passed since
 * the start; the time until the last call ended. A call that starts just before the deadline
 * still finishes, so the elapsed time (not `durationMs`) is what rates divide by.
 */
export async function callFor(
  concurrency: number,
  durationMs: number,
  call: () => Promise<void>,
): Promise<{ elapsedMs: number }> {
  const started = performance.now();
  const until = started + durationMs;
  const caller = async () => {
    while (performance.now() < until) await call();
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  return { elapsedMs: performance.now() - started };
}

/**
 * `call(i, caller)` for each `i` below `n`, by `concurrency` callers that take the next `i`
 * as they get free (never more callers than items).
 */
export async function callEach(
  n: number,
  concurrency: number,
  call: (i: number, caller: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const caller = async (c: number) => {
    while (next < n) await call(next++, c);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, (_, c) => caller(c)));
}
