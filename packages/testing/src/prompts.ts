/** One `<daytona-execute>` block in the seed's format; values are escaped the way the parser reads them. */
export function block(params: Record<string, string | number>): string {
  const lines = Object.entries(params).map(
    ([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
  );
  return `<daytona-execute>\n${lines.join('\n')}\n</daytona-execute>`;
}

/** A prompt the offline model replays: one `<daytona-execute>` block per command, in order. */
export function replayPrompt(commands: string[]): string {
  return commands.map((command) => block({ action: 'execute-command', command })).join('\n');
}
