import type { DaytonaAction, RunsIn, StepOutcome } from '@research/contracts';
import type { LiveOutput, Sandbox } from '@research/sandbox';

/** One attempt of a step, as a runner sees it. */
export interface StepAttempt {
  taskId: string;
  stepIndex: number;
  action: DaytonaAction;
  /** No attempt follows this one: a failure that would retry is the step's last word. */
  lastAttempt: boolean;
  /** Aborted when the task is cancelled: the step stops. */
  signal?: AbortSignal;
  /** A running command's output as it comes (live output); runners without any ignore it. */
  onOutput?: (output: LiveOutput) => void;
}

/**
 * Runs the actions of one `runsIn` of the catalog. Like `Sandbox.run`: a refusal is an outcome,
 * an infrastructure failure throws (retryable or not, by its type).
 */
export interface ActionRunner {
  run(attempt: StepAttempt): Promise<StepOutcome>;
}

/** A runner for each place an action can run; the step executor picks one by the catalog's `runsIn`. */
export type ActionRunners = { readonly [W in RunsIn]: ActionRunner };

/** The sandbox actions, in the task's sandbox container. */
export function sandboxRunner(sandbox: Sandbox): ActionRunner {
  return {
    run: ({ taskId, action, signal, onOutput }) =>
      sandbox.run(taskId, action, { ...(signal ? { signal } : {}), ...(onOutput ? { onOutput } : {}) }),
  };
}
