import { parseArgs } from 'node:util';
import { benchApi } from './parts/api.js';
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
  run: (quick: boolean) => Promise<object>;
}

/** Every part, in the order `npm run bench` runs them. Each returns `{ <name>: { …figures } }`. */
const PARTS: Part[] = [
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

const USAGE = `usage: npm run bench -- [--json] [--only NAME[,NAME]]… [--quick]

  --json     print one JSON line with every part's figures (progress goes to stderr)
  --only     run only these parts: ${PARTS.map((p) => p.name).join(', ')}
  --quick    a smoke run with small counts (its figures are not results)
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
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
    try {
      Object.assign(figures, await part.run(values.quick));
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
