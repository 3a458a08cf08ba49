/**
 * What the board shows of a job's data and return value. Task metadata may carry a caller's
 * credentials and a command's output can be megabytes; neither belongs in a browser tab that
 * polls every few seconds.
 */

/** Keys whose values are never shown. */
export const SECRET_KEY = /key|token|secret|password|auth/i;

export const REDACTED = '[redacted]';

/** Strings longer than this (UTF-8 bytes) are cut. Default of {@link FormatOptions.maxStringBytes}. */
export const MAX_STRING_BYTES = 2 * 1024;

export interface FormatOptions {
  /** Longest string kept whole, in UTF-8 bytes. Default: {@link MAX_STRING_BYTES}. */
  maxStringBytes?: number;
}

// Objects nested deeper than this are summarised; job data is shallow, so only a hostile or
// corrupt payload gets here, and the formatter must never recurse without bound.
const MAX_DEPTH = 20;

/**
 * Copy of a job's data or return value with secrets replaced by `[redacted]` and long strings
 * cut with a note saying how much was left out. Keys matching {@link SECRET_KEY} are redacted
 * wherever they appear (task metadata is where callers put them); bearer tokens inside strings
 * (a command's `curl -H "Authorization: Bearer …"`) are masked too.
 */
export function formatForBoard(value: unknown, options: FormatOptions = {}): unknown {
  const maxBytes = options.maxStringBytes ?? MAX_STRING_BYTES;
  return walk(value, maxBytes, 0);
}

function walk(value: unknown, maxBytes: number, depth: number): unknown {
  if (typeof value === 'string') return truncate(maskInlineSecrets(value), maxBytes);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (Array.isArray(value)) return value.map((v) => walk(v, maxBytes, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && v !== null && v !== undefined ? REDACTED : walk(v, maxBytes, depth + 1);
  }
  return out;
}

const INLINE_SECRETS: RegExp[] = [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, /\bsk-[A-Za-z0-9_-]{16,}/g];

function maskInlineSecrets(text: string): string {
  let out = text;
  for (const pattern of INLINE_SECRETS) {
    out = out.replace(pattern, (match) => {
      const scheme = /^(Bearer|Basic)\s+/i.exec(match);
      return scheme ? `${scheme[0]}${REDACTED}` : REDACTED;
    });
  }
  return out;
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes (never inside a character) and says what was cut. */
export function truncate(text: string, maxBytes: number = MAX_STRING_BYTES): string {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return text;
  // Decoding a cut buffer leaves U+FFFD where a multi-byte character was split; drop it.
  const kept = Buffer.from(text, 'utf8')
    .subarray(0, maxBytes)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
  const cut = bytes - Buffer.byteLength(kept, 'utf8');
  return `${kept}\n… [truncated: ${cut.toLocaleString('en-US')} more bytes of ${bytes.toLocaleString('en-US')} not shown]`;
}

/** A task's progress as the worker reports it. */
interface TaskProgressLike {
  step: number;
  maxSteps: number;
  phase: string;
}

function isTaskProgress(p: unknown): p is TaskProgressLike {
  if (p === null || typeof p !== 'object') return false;
  const o = p as Record<string, unknown>;
  return typeof o.step === 'number' && typeof o.maxSteps === 'number' && o.maxSteps > 0 && typeof o.phase === 'string';
}

/**
 * Bull Board draws its progress ring from a number, or from an object's numeric `progress`
 * field; our tasks report `{step, maxSteps, phase}`. Adding `progress` (percent, 100 when done,
 * since a task may finish before its step budget) keeps the fields for the Progress tab and
 * gives the job card its ring.
 */
export function formatProgress(progress: unknown): unknown {
  if (!isTaskProgress(progress)) return progress;
  const percent = progress.phase === 'done' ? 100 : Math.min(99, Math.round((progress.step / progress.maxSteps) * 100));
  return {
    progress: percent,
    step: progress.step,
    maxSteps: progress.maxSteps,
    phase: progress.phase,
    summary: `step ${progress.step} of ${progress.maxSteps} · ${progress.phase}`,
  };
}
