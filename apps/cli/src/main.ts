#!/usr/bin/env node
import { exitWith, parseArgs } from './args.js';
import { runCommand } from './commands.js';

const parsed = parseArgs(process.argv.slice(2));
if (parsed.kind === 'exit') exitWith(parsed);
else {
  // Ctrl-C stops following (and puts the cursor back); a second Ctrl-C exits at once.
  const controller = new AbortController();
  process.once('SIGINT', () => {
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  process.exitCode = await runCommand(parsed.command, {
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
  });
}
