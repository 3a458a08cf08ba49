import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueOptions, stepJobId, stepQueueName } from '@research/queue';
import { replayPrompt, requireServices, System, type StreamedEvent } from '@research/testing';
import { containerWith, rootExec } from './docker-exec.js';

let sys: System;
let workerId: string;

beforeAll(async () => {
  await requireServices();
  sys = new System({ tag: 'live' });
  workerId = sys.newWorkerId();
  await Promise.all([sys.startApi(), sys.startWorker(workerId)]);
});

afterAll(async () => {
  await sys?.close();
});

interface Output {
  step: number;
  stream: string;
  chunk: string;
}

describe('live output', () => {
  it("streams a running command's output as tool_output events before its step's result, and into its job log", async () => {
    // The command runs until a file appears, and the test writes that file only once it has seen
    // the command's first line on the event stream: the task can only finish if the line came
    // while the command was still running.
    const id = await sys.submit({
      prompt: replayPrompt([
        'echo ready; echo progress >&2; while [ ! -e release ]; do sleep 0.1; done; echo done',
        'echo second',
      ]),
    });
    let released: Promise<string> | undefined;
    const { events } = await sys.follow(id, {
      onEvent: (e) => {
        const data = e.data as Output;
        if (!released && e.type === 'tool_output' && data.chunk.includes('ready'))
          released = containerWith(`research.worker=${workerId}`).then((c) =>
            rootExec(c, `touch /workspace/${id}/release`),
          );
      },
      timeoutMs: 120_000,
    });
    await released;
    expect(released).toBeDefined();
    const view = await sys.view(id);
    expect(view.status).toBe('completed');

    const firstResult = events.findIndex((e) => e.type === 'tool_result' && (e.data as Output).step === 0);
    const outputs = (step: number, stream: string) =>
      events.filter(
        (e: StreamedEvent) =>
          e.type === 'tool_output' && (e.data as Output).step === step && (e.data as Output).stream === stream,
      );
    const stdout0 = outputs(0, 'stdout');
    expect(stdout0.map((e) => (e.data as Output).chunk).join('')).toBe('ready\ndone\n');
    expect(
      outputs(0, 'stderr')
        .map((e) => (e.data as Output).chunk)
        .join(''),
    ).toBe('progress\n');
    // Every live event of the step comes before its result.
    for (const e of [...stdout0, ...outputs(0, 'stderr')]) expect(events.indexOf(e)).toBeLessThan(firstResult);
    // The result is what it always was: the whole output.
    const result = events[firstResult]?.data as { outcome: { result: { stdout: string; stderr: string } } };
    expect(result.outcome.result).toMatchObject({ stdout: 'ready\ndone\n', stderr: 'progress\n' });
    expect(
      outputs(1, 'stdout')
        .map((e) => (e.data as Output).chunk)
        .join(''),
    ).toBe('second\n');

    // Bull Board shows a step job's log from BullMQ's job logs.
    const steps = new Queue(stepQueueName(workerId), queueOptions(sys.redis, sys.prefix));
    try {
      const { logs } = await steps.getJobLogs(stepJobId(id, 0));
      expect(logs.join('')).toContain('[stdout] ready');
      expect(logs).toContain('[stderr] progress\n');
    } finally {
      await steps.close();
    }
  });
});
