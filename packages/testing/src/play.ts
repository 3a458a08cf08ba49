import type { TaskEvent } from '@research/contracts';
import type { TaskStore } from '@research/queue';

const now = () => new Date().toISOString();

export interface PlayStepOptions {
  /** The task's step budget shown in its progress. Default: 3. */
  maxSteps?: number;
  /** Write the model turn's `turn` event before the call, as the worker does. Default: true. */
  turn?: boolean;
}

/**
 * Writes what a worker writes for one `execute-command` step that exits 0 with `ok` — progress,
 * the turn, the call, the step record, the result — through the real store, for tests of the
 * API's readers (CLI, client) that need a task with steps but no sandbox.
 */
export async function playStep(
  store: TaskStore,
  id: string,
  index: number,
  command: string,
  { maxSteps = 3, turn = true }: PlayStepOptions = {},
): Promise<void> {
  await store.records.setProgress(id, { step: index + 1, maxSteps, phase: 'running-step' });
  if (turn) await store.events.append(id, { type: 'turn', at: now(), turn: index + 1 });
  await store.events.append(id, {
    type: 'tool_call',
    at: now(),
    step: index,
    call: { id: `call_${index}`, tool: 'daytona-execute', args: { action: 'execute-command', command } },
  });
  await store.steps.set(id, {
    index,
    action: 'execute-command',
    status: 'completed',
    attempts: 1,
    exitCode: 0,
    durationMs: 5,
  });
  const result: TaskEvent = {
    type: 'tool_result',
    at: now(),
    step: index,
    action: 'execute-command',
    durationMs: 5,
    outcome: {
      ok: true,
      result: {
        action: 'execute-command',
        exitCode: 0,
        stdout: 'ok\n',
        stderr: '',
        timedOut: false,
        truncated: false,
        durationMs: 5,
      },
    },
  };
  await store.events.append(id, result);
}
