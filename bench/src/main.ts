import os from 'node:os';
import { parseArgs } from 'node:util';
import { benchApi } from './parts/api.js';
import { benchClaim } from './parts/claim.js';
import { benchLlm, type LlmBenchOptions, type ToolFormat } from './parts/llm.js';
import { benchMemory } from './parts/memory.js';
import { benchQueue } from './parts/queue.js';
import { benchScaling } from './parts/scaling.js';
import { benchStep } from './parts/step.js';
import { benchSandbox } from './sandbox.js';
import { machine } from './support/machine.js';
import { closeAllSystems } from './support/system.js';
import { renderTable, type Figures } from './support/table.js';

interface Part {
  name: string;
  describe: string;
  /** `quick` shrinks the part to a smoke run (its figures are not results). */
  run: (quick: boolean, options: RunOptions) => Promise<object>;
}

/** Command-line parameters of the parts that take them. */
interface RunOptions {
  llm: LlmBenchOptions;
}

/** Every part, in the order `npm run bench` runs them. Each returns `{ <name>: { …figures } }`. */
const PARTS: Part[] = [
  {
    name: 'llm',
    describe: 'model-bound tasks: C in flight across W workers against a loopback model endpoint',
    run: (quick, o) =>
      benchLlm(
        quick
          ? { inFlight: 40, workers: 2, latencyMs: 300, rounds: 2, pickupSamples: 10, stepSamples: 40, ...o.llm }
          : o.llm,
      ),
  },
  {
    name: 'claim',
    describe: 'SANDBOX_ISOLATION=task: warm-pool claim and cold create → first command',
    run: (quick) => benchClaim(quick ? { warmSamples: 3, coldSamples: 2 } : {}),
  },
  {
    name: 'queue',
    describe: 'raw BullMQ no-op jobs/s vs our 1-step tasks/s',
    run: (quick) => benchQueue(quick ? { rawJobs: 2_000, tasks: 100 } : {}),
  },
  {
    name: 'step',
    describe: 'step round trip (add → result in the task) vs the command’s own time',
    run: (quick) => benchStep(quick ? { tasks: 5 } : {}),
  },
  {
    name: 'sandbox',
    describe: 'execute-command "true": runner vs per-call exec vs docker CLI',
    run: async (quick) => {
      const r: object = await benchSandbox(quick ? { iterations: 50 } : {});
      return 'sandbox' in r ? r : { sandbox: r };
    },
  },
  {
    name: 'api',
    describe: 'POST /v1/jobs accepted/s (autocannon) vs raw queue.add/s',
    run: (quick) => benchApi(quick ? { durationS: 2 } : {}),
  },
  {
    name: 'scaling',
    describe: '1, 2, 4 worker processes on I/O-bound tasks',
    run: (quick) => benchScaling(quick ? { rounds: 2 } : {}),
  },
  {
    name: 'memory',
    describe: 'worker and API RSS before, after 1,000 and after 2,000 tasks',
    run: (quick) => benchMemory(quick ? { tasks: 100, warmupTasks: 10 } : {}),
  },
];

const USAGE = `usage: npm run bench -- [--json] [--only NAME[,NAME]]… [--quick] [llm options]

  --json     print one JSON line with every part's figures (progress goes to stderr)
  --only     run only these parts: ${PARTS.map((p) => p.name).join(', ')}
  --quick    a smoke run with small counts (its figures are not results)

  llm options (a shorter run on a busy machine: e.g. --in-flight 200 --latency-ms 1000):
  --in-flight N    tasks in flight across all workers (default 1000)
  --workers N      worker processes (default 4)
  --latency-ms N   the model's mean answer time per turn (default 2000; ±25 % jitter)
  --rounds N       tasks per run = N × in-flight (default 3)
  --formats LIST   xml,native (default both)
`;

const positive = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} expects a whole number of at least 1 (got ${v})`);
  return n;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      'in-flight': { type: 'string' },
      workers: { type: 'string' },
      'latency-ms': { type: 'string' },
      rounds: { type: 'string' },
      formats: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const wanted = (values.only ?? [])
    .flatMap((o) => o.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((w) => !PARTS.some((p) => p.name === w));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown part ${unknown.join(', ')}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  let llm: LlmBenchOptions;
  try {
    const formats = values.formats?.split(',').map((f) => f.trim());
    if (formats?.some((f) => f !== 'xml' && f !== 'native')) throw new Error('--formats takes xml, native or both');
    const given = {
      inFlight: positive('in-flight', values['in-flight']),
      workers: positive('workers', values.workers),
      latencyMs: positive('latency-ms', values['latency-ms']),
      rounds: positive('rounds', values.rounds),
      formats: formats as ToolFormat[] | undefined,
    };
    llm = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const parts = wanted.length > 0 ? PARTS.filter((p) => wanted.includes(p.name)) : PARTS;

  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('\nbench: interrupted, removing what it made…\n');
    void closeAllSystems().finally(() => process.exit(130));
  });

  const figures: Figures = {};
  for (const part of parts) {
    process.stderr.write(`bench: ${part.name} — ${part.describe}…\n`);
    const started = performance.now();
    const loadBefore = os.loadavg()[0] ?? 0;
    try {
      const result = (await part.run(values.quick, { llm })) as Record<string, Record<string, unknown>>;
      // The machine is shared: every part carries the 1-minute load average before and after it.
      for (const v of Object.values(result))
        v.loadAvg = {
          before: Math.round(loadBefore * 100) / 100,
          after: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
        };
      Object.assign(figures, result);
    } catch (err) {
      // A broken part is reported, and the others still run.
      figures[part.name] = { error: (err as Error).message.split('\n')[0] ?? String(err) };
      process.stderr.write(`bench: ${part.name} failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
    process.stderr.write(`bench: ${part.name} done in ${((performance.now() - started) / 1_000).toFixed(1)} s\n`);
  }
  await closeAllSystems();

  const m = machine();
  if (values.json) process.stdout.write(`${JSON.stringify({ ...figures, machine: m })}\n`);
  else process.stdout.write(`${renderTable(figures, m)}\n`);
}

await main();
