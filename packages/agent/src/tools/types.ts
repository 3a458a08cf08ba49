import type { DaytonaAction } from '@research/contracts';

export type ToolArgsResult = { ok: true; action: DaytonaAction } | { ok: false; error: string };

/**
 * A tool the model may call. Every tool ends up as a `daytona-execute` action, so whatever a
 * model calls runs in the sandbox through the worker's StepRunner — nothing runs on the host.
 * Adding a tool is one file exporting a ToolDefinition, registered in `createDefaultRegistry`.
 */
export interface ToolDefinition {
  /** Name in the XML tag and in native function calls. */
  readonly name: string;
  /** One paragraph for the model. */
  readonly description: string;
  /** When set, the tool is kept for old prompts and models but never advertised; calls are translated and logged. */
  readonly deprecated?: { readonly replacement: string };
  /** JSON schema of the arguments object (native function calling). */
  readonly parameters: Record<string, unknown>;
  /** Validates raw arguments (strings from XML, JSON values from native calls) into an action. */
  toAction(params: Record<string, unknown>): ToolArgsResult;
}
