import { writeFile } from 'node:fs/promises';
import type { TaskRequest, TaskView } from '@research/contracts';
import { EXIT, type CliCommand, type Connection } from './args.js';
import { ResearchClient } from './client.js';
import { ApiError, ConnectionError, ProtocolError, TimeoutError } from './errors.js';
import { followTask, type Output } from './follow.js';
import { runGc } from './gc.js';
import { formatBytes, statusReport } from './render.js';

export interface Io {
  stdout: Output & { write(chunk: string | Uint8Array): unknown };
  stderr: Output;
  /** Stops a follow (Ctrl-C); the task itself keeps running. */
  signal?: AbortSignal;
}

/** No key was given: nothing is sent. */
export class MissingKeyError extends Error {
  override readonly name = 'MissingKeyError';
  constructor() {
    super('no API key: set RESEARCH_API_KEY or pass --key (`npm run up` prints the key it generated)');
  }
}

/** Runs one parsed command; returns the exit code. Errors become one line on stderr here and nowhere else. */
export async function runCommand(command: CliCommand, io: Io): Promise<number> {
  try {
    return await dispatch(command, io);
  } catch (err) {
    const { message, code } = describeError(err, command);
    io.stderr.write(`research: ${message}\n`);
    return code;
  }
}

async function dispatch(command: CliCommand, io: Io): Promise<number> {
  if (command.name === 'gc') return runGc(command, io);
  const client = clientFor(command.conn);
  switch (command.name) {
    case 'submit': {
      const request: TaskRequest = { prompt: command.prompt };
      if (command.maxSteps !== undefined) request.maxSteps = command.maxSteps;
      if (command.timeoutSeconds !== undefined) request.timeoutSeconds = command.timeoutSeconds;
      const accepted = await client.submit(request);
      if (!command.follow) {
        if (command.json) io.stdout.write(`${JSON.stringify(accepted)}\n`);
        else io.stdout.write(`${accepted.id}\n`);
        if (!command.json) io.stderr.write(`submitted; follow it with: research follow ${accepted.id}\n`);
        return EXIT.ok;
      }
      if (!command.json) io.stdout.write(`submitted task ${accepted.id}\n`);
      return await follow(client, accepted.id, command.json, io);
    }
    case 'follow':
      return await follow(client, command.id, command.json, io);
    case 'status': {
      const view = await client.get(command.id);
      io.stdout.write(command.json ? `${JSON.stringify(view)}\n` : `${statusReport(view).join('\n')}\n`);
      return EXIT.ok;
    }
    case 'files': {
      if (command.path === undefined) {
        const files = await client.files(command.id);
        if (files.length === 0) io.stderr.write('no files (yet)\n');
        for (const f of files) io.stdout.write(`${f.path}\t${formatBytes(f.size)}\n`);
        return EXIT.ok;
      }
      const content = await client.file(command.id, command.path);
      if (command.output !== undefined) {
        await writeFile(command.output, content);
        io.stderr.write(`wrote ${command.output} (${formatBytes(content.length)})\n`);
      } else {
        io.stdout.write(content);
      }
      return EXIT.ok;
    }
    case 'cancel':
      await client.cancel(command.id);
      io.stdout.write(`cancel requested for ${command.id}; check with: research status ${command.id}\n`);
      return EXIT.ok;
  }
}

async function follow(client: ResearchClient, id: string, json: boolean, io: Io): Promise<number> {
  const view = await followTask(client, id, {
    out: io.stdout,
    quiet: json,
    ...(io.signal ? { signal: io.signal } : {}),
  });
  if (io.signal?.aborted) {
    io.stderr.write(`\nstopped following; the task goes on. Resume with: research follow ${id}\n`);
    return EXIT.interrupted;
  }
  if (json) io.stdout.write(`${JSON.stringify(view)}\n`);
  return exitFor(view);
}

function exitFor(view: TaskView): number {
  return view.status === 'completed' ? EXIT.ok : EXIT.failed;
}

function clientFor(conn: Connection): ResearchClient {
  if (!conn.key) throw new MissingKeyError();
  return new ResearchClient({ baseUrl: conn.url, apiKey: conn.key });
}

/** One line a person can act on, and the exit code that goes with it. */
export function describeError(
  err: unknown,
  command: Pick<CliCommand, 'conn'> & { id?: string; path?: string },
): { message: string; code: number } {
  const url = command.conn.url;
  if (err instanceof MissingKeyError) return { message: err.message, code: EXIT.auth };
  if (err instanceof ApiError) {
    switch (err.status) {
      case 401:
        return {
          message: `the API at ${url} refused the key (401 ${err.code}): check RESEARCH_API_KEY or --key`,
          code: EXIT.auth,
        };
      case 404: {
        const what =
          command.path !== undefined
            ? `file ${command.path} of task ${command.id}`
            : command.id !== undefined
              ? `task ${command.id}`
              : 'resource';
        return { message: `${what} not found (404): ${err.message}`, code: EXIT.notFound };
      }
      case 400:
      case 413:
      case 415:
        return {
          message: `the API rejected the request (${err.status} ${err.code}): ${err.message}`,
          code: EXIT.usage,
        };
      case 409:
        return { message: `${err.message} (409 ${err.code})`, code: EXIT.failed };
      case 503:
        return {
          message: `the API at ${url} is up but not ready (503 ${err.code}): ${err.message}`,
          code: EXIT.unreachable,
        };
      default:
        return { message: `the API answered ${err.status} ${err.code}: ${err.message}`, code: EXIT.failed };
    }
  }
  if (err instanceof ConnectionError) {
    const why =
      err.code === 'ECONNREFUSED'
        ? 'connection refused'
        : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
          ? 'unknown host'
          : err.code === 'ECONNRESET' || err.code === 'UND_ERR_SOCKET'
            ? 'connection reset'
            : (err.code ?? 'no answer');
    return {
      message: `cannot connect to the API at ${url} (${why}): is it running? Start it with \`npm run up\`, or point RESEARCH_API_URL / --url at it`,
      code: EXIT.unreachable,
    };
  }
  if (err instanceof TimeoutError)
    return { message: `the API at ${url} did not answer within ${err.timeoutMs / 1000} s`, code: EXIT.unreachable };
  if (err instanceof ProtocolError)
    return { message: `unexpected answer from the API at ${url}: ${err.message}`, code: EXIT.failed };
  if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('E')) {
    return { message: err.message, code: EXIT.failed }; // e.g. -o into a directory that does not exist
  }
  return { message: err instanceof Error ? err.message : String(err), code: EXIT.failed };
}
