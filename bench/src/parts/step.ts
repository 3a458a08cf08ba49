import { Job } from 'bullmq';
import { parseStepLogLine, stepJobId, stepQueueName } from '@research/queue';
import { BenchSystem, replayTasks } from '../support/system.js';
import { percentile, round } from '../support/stats.js';

export interface StepBenchOptions {
  /** Measured tasks; each runs `steps` `execute-command "true"` steps. */
  tasks?: number;
  steps?: number;
}

/**
 * A step's round trip as the task sees it (from adding the step job to its result back in the
 * task, the duration in the task job's log) against the command's own `durationMs` (the task
 * view's steps: the sandbox call as the step worker timed it). One task at a time (worker
 * concurrency 1), so the figure is the unloaded overhead of the queue hop.
 */
export async function benchStep({ tasks = 40, steps = 5 }: StepBenchOptions = {}) {
  const system = await BenchSystem.open('step');
  try {
    const worker = await system.startWorker(system.newWorkerId(), { WORKER_CONCURRENCY: '1' });
    await system.runBatch(replayTasks(5, 'true', steps), 60_000);
    const batch = await system.runBatch(replayTasks(tasks, 'true', steps), 300_000);
    const stepQueue = system.queue(stepQueueName(worker.name));

    const roundTrip: number[] = [];
    const command: number[] = [];
    const overhead: number[] = [];
    const queueWait: number[] = [];
    const inWorker: number[] = [];
    for (const id of batch.ids) {
      const [view, logs] = await Promise.all([system.store.records.view(id), system.agentQueue.getJobLogs(id)]);
      const rt = new Map<number, number>();
      // The task's own log line per step (`stepLogLine`), timed around the dispatch.
      for (const line of logs.logs) {
        const logged = parseStepLogLine(line);
        if (logged) rt.set(logged.index, logged.durationMs);
      }
      for (const step of view?.steps ?? []) {
        const r = rt.get(step.index);
        if (r === undefined || step.durationMs === undefined) continue;
        roundTrip.push(r);
        command.push(step.durationMs);
        overhead.push(r - step.durationMs);
        const job = await Job.fromId(stepQueue, stepJobId(id, step.index));
        if (job?.processedOn && job.finishedOn) {
          queueWait.push(job.processedOn - job.timestamp);
          inWorker.push(job.finishedOn - job.processedOn - step.durationMs);
        }
      }
    }
    return {
      step: {
        roundTripP50Ms: round(percentile(roundTrip, 50)),
        commandP50Ms: round(percentile(command, 50)),
        overheadP50Ms: round(percentile(overhead, 50)),
        overheadP95Ms: round(percentile(overhead, 95)),
        // Where the overhead goes (BullMQ's timestamps are whole ms): added → picked up by the
        // step worker, and the step worker's own time around the command.
        addToStartP50Ms: round(percentile(queueWait, 50)),
        workerAroundCommandP50Ms: round(percentile(inWorker, 50)),
        samples: overhead.length,
        failed: batch.failed,
        lost: batch.lost,
      },
    };
  } finally {
    await system.close();
  }
}
