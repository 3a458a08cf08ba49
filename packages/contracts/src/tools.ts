import { z } from 'zod';
import { ActionResult, DaytonaAction, ToolName, toolOf } from './actions.js';

/**
 * A tool call as the loop keeps it: the tool's name, the model's call id, the parsed arguments.
 * The tool is always the one of the action (a deprecated alias the model wrote is not kept here).
 */
export const ToolCall = z
  .object({
    /** Id given by the model (native format) or generated (`call_<step>`). */
    id: z.string().min(1),
    tool: ToolName,
    args: DaytonaAction,
  })
  .refine((call) => toolOf(call.args) === call.tool, {
    message: 'the tool is not the one that runs this action',
    path: ['tool'],
  });
export type ToolCall = z.infer<typeof ToolCall>;

/**
 * What a step produced. A refused action (path outside the workspace, bad parameters) is an
 * outcome the model sees, not a failure of the task.
 */
export const StepOutcome = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), result: ActionResult }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type StepOutcome = z.infer<typeof StepOutcome>;
