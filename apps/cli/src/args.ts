import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { basename } from 'node:path';
import { MAX_LIST_LIMIT, TASK_STATUSES, type TaskStatus } from '@research/contracts';
import { DEFAULT_API_URL } from '@research/client';
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
      /** `--file local[:path/in/task]`, in order; read and sent with the submit. */
      files?: FileSpec[];
      json: boolean;
      conn: Connection;
    }
  | { name: 'follow'; id: string; json: boolean; conn: Connection }
  | { name: 'status'; id: string; json: boolean; conn: Connection }
  | { name: 'files'; id: string; path?: string; output?: string; conn: Connection }
  | { name: 'cancel'; id: string; conn: Connection }
  | { name: 'logs'; id: string; follow: boolean; json: boolean; conn: Connection }
  | ListCommand
  | { name: 'download'; id: string; output?: string; conn: Connection }
  | { name: 'batch'; file: string; json: boolean; conn: Connection }
  | { name: 'delete'; id: string; conn: Connection }
  | GcCommand;

/** `research list`: its options are the command's fields, as commander gives them. */
export interface ListCommand {
  name: 'list';
  status?: TaskStatus;
  tag?: string;
  createdAfter?: string;
  createdBefore?: string;
  limit?: number;
  cursor?: string;
  all: boolean;
  json: boolean;
  conn: Connection;
}

/** A local file to send as an input file, and where it goes in the task directory. */
export interface FileSpec {
  local: string;
  /** Relative to the task directory. Default: the local file's base name. */
  path: string;
}

/**
 * `data.csv` or `data.csv:inputs/data.csv`. The split is at the last colon, so a local name may
 * hold colons as long as a task path follows; a trailing colon is an error, not an empty path.
 */
export function fileSpec(value: string): FileSpec {
  const colon = value.lastIndexOf(':');
  const local = colon > 0 ? value.slice(0, colon) : value;
  const path = colon > 0 ? value.slice(colon + 1) : basename(value);
  if (local.length === 0)
    throw new InvalidArgumentError('expected a local file, e.g. data.csv or data.csv:inputs/data.csv.');
  if (path.length === 0 || path.endsWith('/'))
    throw new InvalidArgumentError('expected a file path in the task after the colon, e.g. data.csv:inputs/data.csv.');
  return { local, path };
}

/** What commander printed (help, version, a usage error) and the exit code, instead of a command to run. */
export interface ParsedExit {
  kind: 'exit';
  code: number;
  stdout: string;
  stderr: string;
}

/** Either a command to run, or what commander printed and the exit code. */
export type ParseResult = { kind: 'run'; command: CliCommand } | ParsedExit;

/** Prints what commander printed and sets the process's exit code: a main's whole answer to a {@link ParsedExit}. */
export function exitWith(parsed: ParsedExit): void {
  process.stdout.write(parsed.stdout);
  process.stderr.write(parsed.stderr);
  process.exitCode = parsed.code;
}

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
    .option(
      '--file <local[:path]>',
      'send a local file, placed in the task directory before the first step (at path, default its name); repeatable',
      (value: string, previous: FileSpec[]) => [...previous, fileSpec(value)],
      [] as FileSpec[],
    )
    .option('--json', 'print JSON (the accepted task; with --follow, the final task view)', false)
    .action(
      (
        words: string[],
        o: { follow: boolean; maxSteps?: number; timeout?: number; file: FileSpec[]; json: boolean },
        cmd: Command,
      ) => {
        result = {
          name: 'submit',
          prompt: words.join(' '),
          follow: o.follow,
          json: o.json,
          ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : {}),
          ...(o.timeout !== undefined ? { timeoutSeconds: o.timeout } : {}),
          ...(o.file.length > 0 ? { files: o.file } : {}),
          conn: conn(cmd),
        };
      },
    );

  /** `research <name> <id>`: a command on one task. */
  const onTask = (name: string, description: string) => sub(name).description(description).argument('<id>', 'task id');
  /** `research <name> <id> [--json]`, the whole command. */
  const viewTask = (name: 'follow' | 'status', description: string, jsonHelp: string) =>
    onTask(name, description)
      .option('--json', jsonHelp, false)
      .action((id: string, o: { json: boolean }, cmd: Command) => {
        result = { name, id, json: o.json, conn: conn(cmd) };
      });
  /** `research <name> <id>` with no options, the whole command. */
  const actOnTask = (name: 'cancel' | 'delete', description: string) =>
    onTask(name, description).action((id: string, _o: unknown, cmd: Command) => {
      result = { name, id, conn: conn(cmd) };
    });

  viewTask(
    'follow',
    'follow a task to its end: live progress, then summary and report location',
    'print only the final task view as JSON',
  );
  viewTask('status', "show a task's status, steps and result", 'print the task view as JSON');

  onTask('files', "list a task's files, or print one (to stdout or -o FILE)")
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

  actOnTask('cancel', 'cancel a queued or running task');

  onTask('logs', "print a task's events (the past ones; with --follow, live ones too until the task ends)")
    .option('-f, --follow', 'keep printing live events until the task is final', false)
    .option('--json', 'one JSON object per event and line: {id, event}', false)
    .action((id: string, o: { follow: boolean; json: boolean }, cmd: Command) => {
      result = { name: 'logs', id, follow: o.follow, json: o.json, conn: conn(cmd) };
    });

  sub('list')
    .description('list your tasks, newest first, one page at a time (or --all)')
    .addOption(new Option('--status <status>', 'only tasks with this status').choices(TASK_STATUSES))
    .option('--tag <tag>', 'only tasks with this tag')
    .option('--created-after <time>', 'only tasks created after this ISO 8601 instant')
    .option('--created-before <time>', 'only tasks created before this ISO 8601 instant')
    .option('--limit <n>', `tasks per page, at most ${MAX_LIST_LIMIT} [20]`, positiveInt)
    .option('--cursor <cursor>', 'the page after the one that printed this cursor')
    .option('--all', 'follow every page to the end', false)
    .option('--json', 'print the page ({items, nextCursor}), or with --all one task per line', false)
    .action((o: Omit<ListCommand, 'name' | 'conn'>, cmd: Command) => {
      if (o.all && o.cursor !== undefined)
        cmd.error('error: --all starts at the first page; leave out --cursor', { exitCode: EXIT.usage });
      result = {
        name: 'list',
        ...(o.status !== undefined ? { status: o.status } : {}),
        ...(o.tag !== undefined ? { tag: o.tag } : {}),
        ...(o.createdAfter !== undefined ? { createdAfter: o.createdAfter } : {}),
        ...(o.createdBefore !== undefined ? { createdBefore: o.createdBefore } : {}),
        ...(o.limit !== undefined ? { limit: o.limit } : {}),
        ...(o.cursor !== undefined ? { cursor: o.cursor } : {}),
        all: o.all,
        json: o.json,
        conn: conn(cmd),
      };
    });

  onTask('download', "download a task's kept files as one .tar.gz")
    .option('-o, --output <file>', 'where to write it (`-` for stdout) [research-<id>.tar.gz]')
    .action((id: string, o: { output?: string }, cmd: Command) => {
      result = { name: 'download', id, ...(o.output !== undefined ? { output: o.output } : {}), conn: conn(cmd) };
    });

  sub('batch')
    .description('submit many tasks at once: one JSON task per line ({"prompt": …, "tags": […], "idempotencyKey": …})')
    .argument('<file>', 'a JSON Lines file, or - for stdin')
    .option('--json', 'print the results ({id} or {error}) one per line', false)
    .action((file: string, o: { json: boolean }, cmd: Command) => {
      result = { name: 'batch', file, json: o.json, conn: conn(cmd) };
    });

  actOnTask('delete', 'delete a finished task: its record, events, files and workspace');

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
