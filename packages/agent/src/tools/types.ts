import type { DaytonaAction } from '@research/contracts';

export type ToolArgsResult = { ok: true; action: DaytonaAction } | { ok: false; error: string };

/**
 * A tool the model may call. Every tool ends up as an action of the catalog, run through the
 * worker's StepRunner: the sandbox actions in the sandbox, the web ones in the worker under the
 * egress policy — nothing the model writes runs on the host. The tools of the catalog are built
 * by `catalogTool`; a deprecated alias is one file exporting a ToolDefinition, registered in
 * `createDefaultRegistry`.
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
