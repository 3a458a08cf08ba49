import type { Job } from 'bullmq';
import type { Logger } from '@research/config';
import type { TaskEvent } from '@research/contracts';
import type { TaskStore } from '@research/queue';
import type { LiveOutput } from '@research/sandbox';

/**
 * Where a running command's output goes while it runs: `tool_output` events on the task's
 * stream (SSE, the CLI's follow) and the step job's log (Bull Board). The sandbox already
 * coalesces and caps it per command, so each call here is one event and one log line.
 *
 * Writes are chained in arrival order and `drain()` waits for them: the step's outcome is
 * recorded only after, so every `tool_output` of a step comes before its `tool_result`. A write
 * that fails is logged and dropped: live output is a view, and the outcome has all of it.
 */
export class LiveOutputSink {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: TaskStore,
    private readonly job: Job,
    private readonly taskId: string,
    private readonly step: number,
    private readonly log: Logger,
  ) {}

  readonly onOutput = (output: LiveOutput): void => {
    const event: TaskEvent = {
      type: 'tool_output',
      at: new Date().toISOString(),
      step: this.step,
      stream: output.stream,
      chunk: output.chunk,
      ...(output.truncated ? { truncated: true as const } : {}),
    };
    const line = `[${output.stream}] ${output.chunk}`;
    this.chain = this.chain.then(async () => {
      try {
        await Promise.all([this.store.events.append(this.taskId, event), this.job.log(line)]);
      } catch (err) {
        this.log.warn({ taskId: this.taskId, step: this.step, err }, 'live output not recorded');
      }
    });
  };

  /** Resolves once every output seen so far is written. */
  drain(): Promise<void> {
    return this.chain;
  }
}
