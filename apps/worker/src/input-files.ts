import type { InputFile, StepOutcome } from '@research/contracts';
import type { Sandbox } from '@research/sandbox';

/** An input file the sandbox refused (a quota, a path it judged outside): the task cannot start as asked. */
export class InputFileError extends Error {
  override readonly name = 'InputFileError';
  readonly retryable = false;
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// ignoreBOM keeps a byte order mark as a character, so the bytes written are the bytes sent.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `text` as one shell word. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Writes a submit's files into the task directory before its first step, through the sandbox
 * like any file of the task (its path rules, its owner). Text goes through create-file as it is;
 * so does base64 content that decodes to UTF-8. Other bytes cannot: create-file takes text, so
 * their base64 is written beside the target and decoded by `base64 -d` in the container. Every
 * write overwrites, so a run that placed some files and died places them again unharmed.
 * Returns whether a command ran (its processes belong to the task like a step's).
 */
export async function placeInputFiles(
  sandbox: Sandbox,
  taskId: string,
  files: readonly InputFile[],
  signal?: AbortSignal,
): Promise<{ ranCommand: boolean }> {
  const options = signal ? { signal } : {};
  let ranCommand = false;
  const check = (outcome: StepOutcome, file: InputFile): void => {
    if (!outcome.ok)
      throw new InputFileError(
        outcome.error.code,
        `input file ${file.path} could not be placed in the task directory: ${outcome.error.message}`,
      );
  };
  for (const [i, file] of files.entries()) {
    const text = file.encoding === 'utf8' ? file.content : utf8(Buffer.from(file.content, 'base64'));
    if (text !== undefined) {
      check(await sandbox.run(taskId, { action: 'create-file', filePath: file.path, content: text }, options), file);
      continue;
    }
    const encoded = `.input-${i}.base64`;
    // The target first, through create-file: the sandbox checks its path and makes its directories.
    check(await sandbox.run(taskId, { action: 'create-file', filePath: file.path, content: '' }, options), file);
    check(
      await sandbox.run(taskId, { action: 'create-file', filePath: encoded, content: file.content }, options),
      file,
    );
    ranCommand = true;
    const decoded = await sandbox.run(
      taskId,
      {
        action: 'execute-command',
        command: `base64 -d -- ${shellQuote(encoded)} > ${shellQuote(`./${file.path}`)} && rm -f -- ${shellQuote(encoded)}`,
        timeoutMs: 60_000,
      },
      options,
    );
    check(decoded, file);
    if (decoded.ok && decoded.result.action === 'execute-command' && decoded.result.exitCode !== 0)
      throw new InputFileError(
        'input_file_failed',
        `input file ${file.path} could not be decoded in the task directory (exit ${decoded.result.exitCode}): ${decoded.result.stderr.slice(0, 300)}`,
      );
  }
  return { ranCommand };
}

function utf8(bytes: Buffer): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}
