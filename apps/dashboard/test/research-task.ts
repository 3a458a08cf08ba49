import { Job, Queue, QueueEvents, Worker } from 'bullmq';
import {
  AGENT_QUEUE,
  JOBS,
  jobOptions,
  stepJobId,
  stepLogLine,
  stepQueueName,
  type Redis,
  type StepJobData,
  type TaskJobData,
} from '@research/queue';
// Type-only: the shapes the real worker produces, so the board is tested against them.
import type { DaytonaAction, Phase, SandboxAction, StepOutcome } from '@research/contracts';

export interface ResearchTaskFixture {
  taskId: string;
  workerId: string;
  /** The task job's id in the `agent` queue. */
  jobId: string;
  steps: { name: string; logLine: string }[];
  close(): Promise<void>;
}

const ANALYSIS_STDOUT = [
  'sector        mean_return  volatility  sharpe',
  'technology        0.1240      0.2210    0.47',
  'healthcare        0.0810      0.1430    0.42',
  'energy            0.0560      0.2650    0.14',
  'utilities         0.0410      0.1020    0.30',
  // A long output, as real analyses print; the board shows it truncated.
  ...Array.from(
    { length: 200 },
    (_, i) => `day ${String(i + 1).padStart(3, '0')}  index=${(4_800 + Math.sin(i / 7) * 120).toFixed(2)}`,
  ),
].join('\n');

/** The plan the offline model runs, one tool call per step. */
const PLAN: SandboxAction[] = [
  {
    action: 'create-file',
    filePath: 'todo.md',
    content: '# Market research\n- [ ] Generate market data\n- [ ] Analyse sectors\n- [ ] Write report\n',
  },
  {
    action: 'create-file',
    filePath: 'analysis.py',
    content: 'import random, statistics\n# generates sector returns and prints a table\n',
  },
  { action: 'execute-command', command: 'python3 analysis.py' },
  { action: 'read-file', filePath: 'results.csv' },
  {
    action: 'create-file',
    filePath: 'report.md',
    content: '# Current market conditions\n\nTechnology leads on risk-adjusted returns…\n',
  },
  { action: 'list-files', path: '.' },
];

function outcomeOf(action: DaytonaAction, durationMs: number): StepOutcome {
  switch (action.action) {
    case 'create-file':
      return {
        ok: true,
        result: {
          action: 'create-file',
          path: action.filePath,
          bytes: Buffer.byteLength(action.content),
          overwritten: false,
        },
      };
    case 'execute-command':
      return {
        ok: true,
        result: {
          action: 'execute-command',
          exitCode: 0,
          stdout: ANALYSIS_STDOUT,
          stderr: '',
          timedOut: false,
          truncated: false,
          durationMs,
        },
      };
    case 'read-file':
      return {
        ok: true,
        result: {
          action: 'read-file',
          path: action.filePath,
          size: 96,
          content: 'sector,mean_return\ntechnology,0.124\nhealthcare,0.081\n',
          binary: false,
          truncated: false,
        },
      };
    case 'list-files':
      return {
        ok: true,
        result: {
          action: 'list-files',
          path: action.path ?? '.',
          files: ['analysis.py', 'report.md', 'results.csv', 'todo.md'].map((p) => ({
            path: p,
            size: 120,
            type: 'file' as const,
          })),
          truncated: false,
        },
      };
    default:
      return { ok: false, error: { code: 'invalid_action', message: `${action.action} is not in this plan` } };
  }
}

/**
 * Runs one research task to completion the way the worker does: a task job in `agent`, one
 * child step job per tool call in `steps.<workerId>` (linked with `parent`), processed by real
 * BullMQ workers; the task logs a line per step and reports `{step, maxSteps, phase}`.
 * Step 4's first attempt fails like a lost container does, so the board shows a retried step.
 */
export async function runResearchTask(
  connection: Redis,
  prefix: string,
  options: { taskId: string; workerId: string; maxSteps?: number },
): Promise<ResearchTaskFixture> {
  const { taskId, workerId } = options;
  const maxSteps = options.maxSteps ?? 12;
  const agent = new Queue(AGENT_QUEUE, { connection, prefix });
  const steps = new Queue(stepQueueName(workerId), { connection, prefix });
  // Workers and event listeners block on their connections, so each gets its own; they are
  // passed in (BullMQ then never closes them) and closed here.
  const owned: Redis[] = [];
  const own = () => {
    const c = connection.duplicate();
    owned.push(c);
    return c;
  };
  const stepEvents = new QueueEvents(stepQueueName(workerId), { connection: own(), prefix });
  await stepEvents.waitUntilReady();
  const lines: { name: string; logLine: string }[] = [];

  const stepWorker = new Worker<StepJobData, StepOutcome>(
    stepQueueName(workerId),
    async (job) => {
      const started = Date.now();
      if (job.data.stepIndex === 3 && job.attemptsMade === 0)
        throw new Error('sandbox container research-sandbox-w1 is gone (restarting it)');
      await new Promise((r) => setTimeout(r, 20 + job.data.stepIndex * 5));
      return outcomeOf(job.data.action, Date.now() - started);
    },
    { connection: own(), prefix, name: workerId },
  );

  const taskWorker = new Worker<TaskJobData>(
    AGENT_QUEUE,
    async (job) => {
      const progress = (step: number, phase: Phase) => job.updateProgress({ step, maxSteps, phase });
      await progress(0, 'starting');
      for (const [i, action] of PLAN.entries()) {
        const index = i + 1;
        await progress(index - 1, 'thinking');
        // Step indices count from 0, as the worker's do; names and log lines count from 1.
        const data: StepJobData = { taskId, stepIndex: i, callId: `call_${i}`, action };
        const name = JOBS.step.name(data);
        const started = Date.now();
        const child = await steps.add(
          name,
          data,
          jobOptions('step', {
            jobId: stepJobId(taskId, i),
            parent: { id: job.id!, queue: job.queueQualifiedName },
            removeDependencyOnFailure: true,
            backoff: { type: 'fixed', delay: 100 },
          }),
        );
        await progress(index, 'running-step');
        const outcome = (await child.waitUntilFinished(stepEvents, 30_000)) as StepOutcome;
        // The worker's own formatter: the board is shown the line the worker writes.
        const line = stepLogLine(i, action.action, outcome, Date.now() - started);
        await job.log(line);
        lines.push({ name, logLine: line });
      }
      await progress(PLAN.length, 'finishing');
      await progress(PLAN.length, 'done');
      return {
        summary: 'Technology leads on risk-adjusted returns; see report.md.',
        files: [
          { path: 'report.md', size: 64 },
          { path: 'todo.md', size: 80 },
        ],
      };
    },
    { connection: own(), prefix, name: workerId },
  );

  const data: TaskJobData = {
    taskId,
    request: {
      prompt: 'Research current market conditions and investment opportunities in major sectors',
      maxSteps,
      metadata: { requestedBy: 'analyst@example.com', apiKey: 'sk-test-should-never-show-123456' },
    },
    createdAt: new Date().toISOString(),
  };
  const close = async () => {
    await Promise.all([taskWorker.close(), stepWorker.close(), stepEvents.close()]);
    await Promise.all([agent.close(), steps.close()]);
    await Promise.all(owned.map((c) => c.quit().catch(() => c.disconnect())));
  };

  let jobId: string;
  try {
    const taskJob = await agent.add(JOBS.task.name(data), data, jobOptions('task', { jobId: taskId }));
    jobId = taskJob.id!;
    const agentEvents = new QueueEvents(AGENT_QUEUE, { connection: own(), prefix });
    try {
      await agentEvents.waitUntilReady();
      if ((await taskJob.getState()) !== 'completed') await taskJob.waitUntilFinished(agentEvents, 60_000);
    } finally {
      await agentEvents.close();
    }
    const state = await (await Job.fromId(agent, jobId))?.getState();
    if (state !== 'completed') throw new Error(`task ${taskId} ended ${state ?? 'missing'}, not completed`);
  } catch (err) {
    await close();
    throw err;
  }

  return { taskId, workerId, jobId, steps: lines, close };
}
