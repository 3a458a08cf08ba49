import { createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { MAX_BATCH_TASKS, type BatchItem, type BatchItemResult, type TaskListItem } from '@research/contracts';
import type { ListQuery, ResearchClient } from '@research/client';
import { EXIT, type CliCommand } from './args.js';
import { formatBytes, oneLine, truncate } from './render.js';

type Command<N extends CliCommand['name']> = Extract<CliCommand, { name: N }>;

interface Out {
  write(chunk: string | Uint8Array): unknown;
}

/** A file the CLI was given that it cannot use; nothing was sent. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** `research list`: one page (or every page with `--all`), newest first. */
export async function listTasks(
  client: ResearchClient,
  command: Command<'list'>,
  io: { stdout: Out; stderr: Out },
): Promise<number> {
  const query: ListQuery = {};
  if (command.status !== undefined) query.status = command.status;
  if (command.tag !== undefined) query.tag = command.tag;
  if (command.createdAfter !== undefined) query.createdAfter = command.createdAfter;
  if (command.createdBefore !== undefined) query.createdBefore = command.createdBefore;
  if (command.limit !== undefined) query.limit = command.limit;
  if (command.all) {
    let count = 0;
    for await (const item of client.listAll(query)) {
      if (count === 0 && !command.json) io.stdout.write(`${HEADER}\n`);
      io.stdout.write(command.json ? `${JSON.stringify(item)}\n` : `${listLine(item)}\n`);
      count++;
    }
    if (count === 0) io.stderr.write('no tasks\n');
    return EXIT.ok;
  }
  const page = await client.list(command.cursor === undefined ? query : { ...query, cursor: command.cursor });
  if (command.json) {
    io.stdout.write(`${JSON.stringify(page)}\n`);
    return EXIT.ok;
  }
  if (page.items.length === 0) io.stderr.write('no tasks\n');
  else io.stdout.write(`${[HEADER, ...page.items.map(listLine)].join('\n')}\n`);
  if (page.nextCursor !== null)
    io.stderr.write(`more: research list ${moreArgs(command)}--cursor ${page.nextCursor}\n`);
  return EXIT.ok;
}

const HEADER = `${'ID'.padEnd(36)}  ${'STATUS'.padEnd(9)}  ${'CREATED'.padEnd(19)}  ${'TAGS'.padEnd(16)}  PROMPT`;

export function listLine(item: TaskListItem): string {
  const created = item.createdAt.slice(0, 19).replace('T', ' ');
  const tags = item.tags.length > 0 ? item.tags.join(',') : '-';
  return `${item.id.padEnd(36)}  ${item.status.padEnd(9)}  ${created}  ${tags.padEnd(16)}  ${truncate(oneLine(item.promptPreview), 60)}`;
}

/** The filters of this listing again, so the printed "more" command lists the same tasks. */
function moreArgs(command: Command<'list'>): string {
  const args: string[] = [];
  if (command.status !== undefined) args.push('--status', command.status);
  if (command.tag !== undefined) args.push('--tag', command.tag);
  if (command.createdAfter !== undefined) args.push('--created-after', command.createdAfter);
  if (command.createdBefore !== undefined) args.push('--created-before', command.createdBefore);
  if (command.limit !== undefined) args.push('--limit', String(command.limit));
  return args.map((a) => `${a} `).join('');
}

/**
 * `research download`: streams the archive to a file (or stdout). It is written beside the
 * target as `.part` and renamed once complete, so a cut download never looks like a whole one.
 */
export async function downloadArchive(
  client: ResearchClient,
  command: Command<'download'>,
  io: { stdout: Out; stderr: Out },
): Promise<number> {
  const archive = await client.archive(command.id);
  const source = Readable.fromWeb(archive.body as unknown as WebReadableStream<Uint8Array>);
  if (command.output === '-') {
    for await (const chunk of source) io.stdout.write(chunk as Uint8Array);
    return EXIT.ok;
  }
  const target = command.output ?? archive.filename;
  const part = `${target}.part`;
  let bytes = 0;
  source.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  try {
    await pipeline(source, createWriteStream(part));
    await rename(part, target);
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
  const files = archive.files !== undefined ? `${archive.files} file${archive.files === 1 ? '' : 's'}, ` : '';
  io.stderr.write(`wrote ${target} (${files}${formatBytes(bytes)})\n`);
  if (archive.omittedFiles)
    io.stderr.write(`${archive.omittedFiles} file(s) were too big to be kept and are not in it\n`);
  return EXIT.ok;
}

/** The tasks of a JSON Lines file, each with its line number; blank lines are skipped. */
export function parseTaskLines(text: string, name: string): { line: number; item: BatchItem }[] {
  const tasks: { line: number; item: BatchItem }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    let item: unknown;
    try {
      item = JSON.parse(raw);
    } catch (err) {
      throw new InputError(`${name}:${i + 1}: not JSON (${(err as Error).message})`);
    }
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw new InputError(`${name}:${i + 1}: a task is a JSON object, e.g. {"prompt": "…"}`);
    // The API checks each task and answers per item, so the file's tasks are not checked here too.
    tasks.push({ line: i + 1, item: item as BatchItem });
  });
  if (tasks.length === 0) throw new InputError(`${name}: no tasks (one JSON object per line)`);
  return tasks;
}

/**
 * `research batch`: the file's tasks in batches of up to 1,000 (one request each). Every task
 * gets one line: its id, or why it was refused. Exit 0 when every task was accepted, 1 otherwise.
 */
export async function submitBatch(
  client: ResearchClient,
  command: Command<'batch'>,
  io: { stdout: Out; stderr: Out; stdin?: AsyncIterable<Buffer | string> },
): Promise<number> {
  const text = command.file === '-' ? await readAll(io.stdin ?? process.stdin) : await readFile(command.file, 'utf8');
  const tasks = parseTaskLines(text, command.file === '-' ? 'stdin' : command.file);
  let accepted = 0;
  for (let start = 0; start < tasks.length; start += MAX_BATCH_TASKS) {
    const chunk = tasks.slice(start, start + MAX_BATCH_TASKS);
    const { results } = await client.batch(chunk.map((t) => t.item));
    results.forEach((result, k) => {
      const { line } = chunk[k]!;
      if ('id' in result) accepted++;
      io.stdout.write(command.json ? `${JSON.stringify({ line, ...result })}\n` : `${resultLine(line, result)}\n`);
    });
  }
  const refused = tasks.length - accepted;
  io.stderr.write(`accepted ${accepted}, refused ${refused}\n`);
  return refused === 0 ? EXIT.ok : EXIT.failed;
}

function resultLine(line: number, result: BatchItemResult): string {
  if ('id' in result) return `line ${line}\t${result.id}`;
  return `line ${line}\trefused ${result.error.code}: ${result.error.message}`;
}

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
  return text;
}
