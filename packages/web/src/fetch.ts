import { createHash } from 'node:crypto';
import type { WebFetchResult } from '@research/contracts';
import type { TaskWebBudget } from './budget.js';
import { type Conversion, contentKind, decodeText, htmlToMarkdown, mediaType, pdfToText } from './convert.js';
import { HttpStatusError, retryAfterMs, UnsupportedContentError } from './errors.js';
import { egressRequest } from './http.js';
import type { EgressPolicy } from './policy.js';

export interface FetchPageOptions {
  policy: EgressPolicy;
  /**
   * The NNN of `sources/NNN-<slug>.<ext>`, unique within the task: the worker passes the step's
   * number (1-based), which also makes the name the same when the step is retried.
   */
  index: number;
  /** WEB_FETCH_MAX_BYTES: bytes of the body read at most. Default: 2 MiB. */
  maxBytes?: number;
  /** WEB_FETCH_TIMEOUT_MS: the whole fetch, redirects included. Default: 30000. */
  timeoutMs?: number;
  /** The task's fetch and byte budget; none: unlimited. */
  budget?: TaskWebBudget;
  /** Characters of readable text in the result's excerpt. Default: 4000. */
  excerptChars?: number;
  signal?: AbortSignal;
  /** Default: the clock. */
  now?: () => Date;
  /** Default: `research-jobs web-fetch`. */
  userAgent?: string;
}

/** What the worker saves next to the page: where it came from, when, and its hash. */
export interface SourceMeta {
  url: string;
  requestedUrl: string;
  redirects: string[];
  status: number;
  contentType: string;
  title?: string;
  fetchedAt: string;
  bytes: number;
  sha256: string;
  truncated: boolean;
  savedAs: string;
  conversion: Conversion;
}

export interface FetchedPage {
  /** What the model reads (the web-fetch step's result). */
  result: WebFetchResult;
  /**
   * The files to write into the task directory, as UTF-8 text: the page (`result.savedAs`), then
   * its `.meta.json`. The worker can write them with create-file actions.
   */
  files: [{ path: string; content: string }, { path: string; content: string }];
  meta: SourceMeta;
}

const ACCEPT =
  'text/html,application/xhtml+xml,text/plain;q=0.9,text/csv;q=0.9,application/json;q=0.9,application/pdf;q=0.8,*/*;q=0.1';

/** `Quarterly Report: Q3 (2024)` → `quarterly-report-q3-2024`; ASCII only, at most `max` characters. */
export function slugify(text: string, max = 48): string {
  const slug = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, max).replace(/-+$/, '');
}

function slugOf(title: string | undefined, url: URL): string {
  const last = url.pathname
    .split('/')
    .filter(Boolean)
    .at(-1)
    ?.replace(/\.[a-z0-9]+$/i, '');
  return slugify(title ?? '') || slugify(last ?? '') || slugify(url.hostname) || 'page';
}

/** The start of `text`, cut at a word boundary, saying how much more there is. */
function excerptOf(text: string, chars: number): string {
  if (text.length <= chars) return text;
  const cut = text.slice(0, chars);
  const at = cut.search(/\s\S*$/);
  return `${at > chars / 2 ? cut.slice(0, at) : cut}\n[… excerpt ends: ${text.length} characters in all]`;
}

/**
 * Fetches one page through the egress policy and returns what the worker saves (the page as
 * `sources/NNN-<slug>.<ext>` and its metadata beside it) and what the model reads. HTML becomes
 * markdown, PDF becomes text, text/CSV/JSON are kept as they are (as UTF-8); any other type, and any
 * status but 2xx, is an error before the body is read. Errors are WebErrors (`egress_denied`,
 * `http_error`, `unsupported_content_type`, `fetch_timeout`, `unreadable_pdf`…).
 */
export async function fetchPage(url: string, options: FetchPageOptions): Promise<FetchedPage> {
  const maxBytes = options.maxBytes ?? 2 * 1024 * 1024;
  // The policy first: a refused URL costs no budget (and the request connects where this vetted).
  const destination = await options.policy.vet(url);
  const allowance = options.budget ? await options.budget.beginFetch(url, maxBytes) : maxBytes;
  const seen: { kind?: NonNullable<ReturnType<typeof contentKind>> } = {};
  const response = await egressRequest(options.policy, destination, {
    headers: {
      accept: ACCEPT,
      'user-agent': options.userAgent ?? 'research-jobs web-fetch',
      'accept-encoding': 'identity',
    },
    maxBytes: allowance,
    timeoutMs: options.timeoutMs ?? 30_000,
    ...(options.signal ? { signal: options.signal } : {}),
    onResponse: ({ url: at, status, headers }) => {
      if (status < 200 || status > 299) throw new HttpStatusError(at, status, retryAfterMs(headers['retry-after']));
      const kind = contentKind(mediaType(headers['content-type']), at);
      if (!kind) throw new UnsupportedContentError(at, mediaType(headers['content-type']));
      seen.kind = kind;
    },
  });
  await options.budget?.addBytes(response.body.length);
  // onResponse ran, or egressRequest threw: the kind is known here.
  const { type, kind: how } = seen.kind!;
  const contentTypeHeader = response.headers['content-type'];
  const final = new URL(response.url);
  let title: string | undefined;
  let text: string;
  if (how.conversion === 'markdown') {
    const page = htmlToMarkdown(decodeText(response.body, contentTypeHeader), response.url);
    title = page.title;
    text = page.markdown;
  } else if (how.conversion === 'pdf-text') {
    const pdf = await pdfToText(response.body, response.truncated);
    title = pdf.title;
    text = pdf.text;
  } else {
    // Kept as received, decoded from its charset: UTF-8 text is saved byte for byte.
    text = decodeText(response.body, contentTypeHeader);
  }
  const stem = `sources/${String(options.index).padStart(3, '0')}-${slugOf(title, final)}`;
  const savedAs = `${stem}.${how.ext}`;
  const sha256 = createHash('sha256').update(response.body).digest('hex');
  const meta: SourceMeta = {
    url: response.url,
    requestedUrl: url,
    redirects: response.redirects,
    status: response.status,
    contentType: type,
    ...(title ? { title } : {}),
    fetchedAt: (options.now?.() ?? new Date()).toISOString(),
    bytes: response.body.length,
    sha256,
    truncated: response.truncated,
    savedAs,
    conversion: how.conversion,
  };
  return {
    result: {
      action: 'web-fetch',
      url: response.url,
      status: response.status,
      contentType: type,
      ...(title ? { title } : {}),
      savedAs,
      bytes: response.body.length,
      sha256,
      excerpt: excerptOf(text, options.excerptChars ?? 4_000),
      truncated: response.truncated,
    },
    files: [
      { path: savedAs, content: text },
      { path: `${stem}.meta.json`, content: `${JSON.stringify(meta, null, 2)}\n` },
    ],
    meta,
  };
}
