import { workspacePathProblem } from '@research/contracts';
import { InvalidRequestError } from './errors.js';

/** Enough for any honest double encoding; more layers than this is an attack, refused. */
const MAX_DECODE_ROUNDS = 5;

const outside = (why: string) =>
  new InvalidRequestError(`path is outside the task's workspace: ${why}`, undefined, 'path_outside_workspace');

/**
 * The workspace-relative path named by the raw (still percent-encoded) URL tail. Decodes until
 * stable before checking, so `%2e%2e`, `%252e%252e` and `..%5c` are judged as what they would
 * become after any number of decodes downstream. Refuses `..` segments, absolute paths, drive
 * letters, backslashes and NUL. Returns the path decoded once (what the client named).
 */
export function workspacePath(rawTail: string): string {
  let once: string | undefined;
  let current = rawTail;
  for (let round = 0; ; round++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      throw new InvalidRequestError('path has malformed percent-encoding', undefined, 'path_outside_workspace');
    }
    once ??= next;
    if (next === current) break;
    if (round >= MAX_DECODE_ROUNDS) throw outside('too many layers of percent-encoding');
    current = next;
  }
  const path = current;
  if (path.length === 0) throw new InvalidRequestError('file path is empty');
  const problem = workspacePathProblem(path);
  if (problem) throw outside(problem);
  return once;
}

const TEXT = 'text/plain; charset=utf-8';
const TYPES: Record<string, string> = {
  md: 'text/markdown; charset=utf-8',
  markdown: 'text/markdown; charset=utf-8',
  txt: TEXT,
  log: TEXT,
  py: TEXT,
  js: TEXT,
  ts: TEXT,
  sh: TEXT,
  yaml: TEXT,
  yml: TEXT,
  toml: TEXT,
  ini: TEXT,
  csv: 'text/csv; charset=utf-8',
  tsv: 'text/tab-separated-values; charset=utf-8',
  json: 'application/json; charset=utf-8',
  // Markup is served as text: a model-written page must not run script on the API's origin.
  html: TEXT,
  htm: TEXT,
  svg: TEXT,
  xml: TEXT,
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
};

/** Content type by extension; unknown extensions are text when the bytes are valid UTF-8 without NUL. */
export function contentTypeOf(path: string, bytes: Buffer): string {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
  const known = TYPES[ext];
  if (known) return known;
  return looksLikeText(bytes) ? TEXT : 'application/octet-stream';
}

function looksLikeText(bytes: Buffer): boolean {
  if (bytes.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
