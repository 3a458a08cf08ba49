import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEFAULT_API_URL } from './client.js';
import { type GcCommand, registerGc } from './gc.js';

/** Where the API is and the key for it, after flags and environment are merged. */
export interface Connection {
  url: string;
  /** Undefined when neither `--key` nor `RESEARCH_API_KEY` gave one. */
  key: string | undefined;
}

export type CliCommand =
  | {
      name: 'submit';
      prompt: string;
      follow: boolean;
      maxSteps?: number;
      timeoutSeconds?: number;
      json: boolean;
      conn: Connection;
    }
  | { name: 'follow'; id: string; json: boolean; conn: Connection }
  | { name: 'status'; id: string; json: boolean; conn: Connection }
  | { name: 'files'; id: string; path?: string; output?: string; conn: Connection }
  | { name: 'cancel'; id: string; conn: Connection }
  | GcCommand;

/** Either a command to run, or what commander printed (help, version, a usage error) and the exit code. */
export type ParseResult =
  | { kind: 'run'; command: CliCommand }
  | { kind: 'exit'; code: number; stdout: string; stderr: string };

/** Exit codes, so scripts can tell the failures apart. */
export const EXIT = {
  ok: 0,
  /** The task ended failed or cancelled, or an unexpected error. */
  failed: 1,
  /** Bad arguments, or the API refused the request as invalid (400). */
  usage: 2,
  /** No key, or the API refused the key (401). */
  auth: 3,
  /** Unknown task or file (404). */
  notFound: 4,
  /** The API is not reachable at the URL. */
  unreachable: 5,
  /** Interrupted (Ctrl-C). */
  interrupted: 130,
} as const;

export function positiveInt(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError('expected a positive whole number.');
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number.');
  return n;
}

const EXIT_CODES_HELP = `
Environment:
  RESEARCH_API_URL   API base URL [${DEFAULT_API_URL}]
  RESEARCH_API_KEY   bearer key (\`npm run up\` prints one)

Exit codes: 0 ok · 1 task failed/cancelled or other error · 2 bad arguments or request (400)
            3 missing or wrong key · 4 unknown task or file · 5 API not reachable · 130 interrupted`;

/**
 * Parses `research …` arguments into a typed command. Never exits the process: help, version
 * and usage errors come back as text and an exit code.
 */
export function parseArgs(argv: readonly string[], env: Record<string, string | undefined> = process.env): ParseResult {
  let stdout = '';
  let stderr = '';
  let result: CliCommand | undefined;

  const program = new Command('research')
    .description('Submit research tasks to the research API, follow them, and fetch their files.')
    .version('0.1.0')
    .option('--url <url>', 'API base URL (env RESEARCH_API_URL)')
    .option('--key <key>', 'API bearer key (env RESEARCH_API_KEY)')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(run `research --help` for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });

  const conn = (cmd: Command): Connection => {
    const o = cmd.optsWithGlobals<{ url?: string; key?: string }>();
    const key = o.key ?? env.RESEARCH_API_KEY;
    return { url: o.url ?? nonEmpty(env.RESEARCH_API_URL) ?? DEFAULT_API_URL, key: nonEmpty(key) };
  };
  const sub = (name: string) =>
    program
      .command(name)
      .exitOverride()
      .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });

  sub('submit')
    .description('submit a research task and print its id (or follow it with --follow)')
    .argument('<prompt...>', 'what to research (quote it)')
    .option('-f, --follow', 'follow the task to its end with a live progress bar', false)
    .option('--max-steps <n>', 'step budget of the task (tool calls)', positiveInt)
    .option('--timeout <seconds>', 'wall-clock budget of the task in seconds', positiveInt)
    .option('--json', 'print JSON (the accepted task; with --follow, the final task view)', false)
    .action(
      (words: string[], o: { follow: boolean; maxSteps?: number; timeout?: number; json: boolean }, cmd: Command) => {
        result = {
          name: 'submit',
          prompt: words.join(' '),
          follow: o.follow,
          json: o.json,
          ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : {}),
          ...(o.timeout !== undefined ? { timeoutSeconds: o.timeout } : {}),
          conn: conn(cmd),
        };
      },
    );

  sub('follow')
    .description('follow a task to its end: live progress, then summary and report location')
    .argument('<id>', 'task id')
    .option('--json', 'print only the final task view as JSON', false)
    .action((id: string, o: { json: boolean }, cmd: Command) => {
      result = { name: 'follow', id, json: o.json, conn: conn(cmd) };
    });

  sub('status')
    .description("show a task's status, steps and result")
    .argument('<id>', 'task id')
    .option('--json', 'print the task view as JSON', false)
    .action((id: string, o: { json: boolean }, cmd: Command) => {
      result = { name: 'status', id, json: o.json, conn: conn(cmd) };
    });

  sub('files')
    .description("list a task's files, or print one (to stdout or -o FILE)")
    .argument('<id>', 'task id')
    .argument('[path]', 'file inside the task workspace, e.g. report.md')
    .option('-o, --output <file>', 'write the file here instead of stdout')
    .action((id: string, path: string | undefined, o: { output?: string }, cmd: Command) => {
      if (o.output !== undefined && path === undefined)
        cmd.error('error: --output needs a file path, e.g. `research files <id> report.md -o report.md`', {
          exitCode: EXIT.usage,
        });
      result = {
        name: 'files',
        id,
        ...(path !== undefined ? { path } : {}),
        ...(o.output !== undefined ? { output: o.output } : {}),
        conn: conn(cmd),
      };
    });

  sub('cancel')
    .description('cancel a queued or running task')
    .argument('<id>', 'task id')
    .action((id: string, _o: unknown, cmd: Command) => {
      result = { name: 'cancel', id, conn: conn(cmd) };
    });

  registerGc(sub('gc'), (c, cmd) => (result = { ...c, conn: conn(cmd) }));

  try {
    program.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      const code = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return { kind: 'exit', code, stdout, stderr };
    }
    throw err;
  }
  if (!result) {
    // `research` alone: show help rather than nothing.
    return { kind: 'exit', code: EXIT.usage, stdout: '', stderr: program.helpInformation() };
  }
  return { kind: 'run', command: result };
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}
