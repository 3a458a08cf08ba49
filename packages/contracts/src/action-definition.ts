import { z } from 'zod';

/** The call of action `name`: its parameters after the `action` discriminator; other keys are refused. */
export function actionParams<N extends string, S extends z.ZodRawShape>(name: N, shape: S) {
  return z.strictObject({ action: z.literal(name), ...shape });
}

/** What action `name` returned, tagged with its `action`. */
export function actionResult<N extends string, S extends z.ZodRawShape>(name: N, shape: S) {
  return z.object({ action: z.literal(name), ...shape });
}

/** What running an action may do; the worker decides from this what a step leaves behind. */
export interface ActionEffects {
  /** Reads files of the task's workspace. */
  readonly readsWorkspace: boolean;
  /** Creates or changes files of the task's workspace (the worker snapshots them after the step). */
  readonly writesWorkspace: boolean;
  /** Runs code the model wrote: processes that may outlive the step and must be stopped with the task. */
  readonly runsCode: boolean;
  /** Reaches the network (from the worker, through the egress policy; never from the sandbox). */
  readonly network: boolean;
}

/** `sandbox`: in the task's sandbox container, through the runner; `worker`: in the worker process. */
export type RunsIn = 'sandbox' | 'worker';

/** One catalog entry. `P` validates the call (with its `action` discriminator), `R` the result. */
export interface ActionDefinition<
  N extends string,
  T extends string,
  P extends z.ZodType,
  R extends z.ZodType,
  W extends RunsIn = RunsIn,
> {
  readonly name: N;
  /**
   * The tool the model calls to run this action (`<daytona-execute>` blocks, a native function).
   * A tool with one action takes that action's parameters without an `action` key.
   */
  readonly tool: T;
  readonly runsIn: W;
  readonly params: P;
  readonly result: R;
  readonly effects: ActionEffects;
  /**
   * Parameters that name a path relative to the task directory; the sandbox resolves and checks
   * each (an absent optional one means the task directory itself).
   */
  readonly pathParams: readonly string[];
  /** The model's description of each parameter (native function calling). */
  readonly paramDocs: Readonly<Record<string, string>>;
  /** The system prompt's line for the action, after its name. */
  readonly prompt: string;
  /** An example call for the system prompt. */
  readonly example: { readonly note: string; readonly args: z.output<P> };
  /** The call on one line, unbounded: the command, the path. Logs, the CLI and the dashboard show it. */
  summary(args: z.output<P>): string;
  /** The result as the model reads it (before the context's truncation). */
  describe(result: z.output<R>): string;
}

export function defineAction<
  N extends string,
  T extends string,
  P extends z.ZodType,
  R extends z.ZodType,
  W extends RunsIn,
>(definition: ActionDefinition<N, T, P, R, W>): ActionDefinition<N, T, P, R, W> {
  return definition;
}

export const NO_EFFECTS: ActionEffects = {
  readsWorkspace: false,
  writesWorkspace: false,
  runsCode: false,
  network: false,
};
