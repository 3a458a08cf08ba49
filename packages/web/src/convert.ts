/// <reference path="./vendor.d.ts" />
import { gfm } from '@joplin/turndown-plugin-gfm';
import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';
import TurndownService from 'turndown';
import { WebError } from './errors.js';

/** How a fetched type is kept: converted to markdown or text, or saved as received. */
export type Conversion = 'markdown' | 'pdf-text' | 'none';

export interface ContentKind {
  /** The file extension of the saved page. */
  readonly ext: string;
  readonly conversion: Conversion;
}

const BY_TYPE: Record<string, ContentKind> = {
  'text/html': { ext: 'md', conversion: 'markdown' },
  'application/xhtml+xml': { ext: 'md', conversion: 'markdown' },
  'text/markdown': { ext: 'md', conversion: 'none' },
  'text/x-markdown': { ext: 'md', conversion: 'none' },
  'text/plain': { ext: 'txt', conversion: 'none' },
  'text/csv': { ext: 'csv', conversion: 'none' },
  'application/csv': { ext: 'csv', conversion: 'none' },
  'text/tab-separated-values': { ext: 'tsv', conversion: 'none' },
  'application/json': { ext: 'json', conversion: 'none' },
  'text/json': { ext: 'json', conversion: 'none' },
  'application/pdf': { ext: 'txt', conversion: 'pdf-text' },
};

/** For servers that say `application/octet-stream` (or nothing) about a file whose name is plain. */
const BY_EXTENSION: Record<string, string> = {
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  txt: 'text/plain',
  md: 'text/markdown',
  json: 'application/json',
  pdf: 'application/pdf',
  html: 'text/html',
  htm: 'text/html',
};

/** The media type without parameters, lowercase (`text/html; charset=utf-8` → `text/html`). */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/**
 * What to make of a response: by its stated type, else (for `application/octet-stream` or no
 * type) by the URL's extension. Any other `text/*` is kept as text; everything else (images,
 * archives, media, executables) is not fetched: undefined.
 */
export function contentKind(contentType: string, url: string): { type: string; kind: ContentKind } | undefined {
  let type = contentType;
  if (type === '' || type === 'application/octet-stream' || type === 'binary/octet-stream') {
    const ext = /\.([a-z0-9]+)$/i.exec(new URL(url).pathname)?.[1]?.toLowerCase() ?? '';
    type = BY_EXTENSION[ext] ?? type;
  }
  const known = BY_TYPE[type];
  if (known) return { type, kind: known };
  if (type.endsWith('+json')) return { type, kind: { ext: 'json', conversion: 'none' } };
  if (type.startsWith('text/')) return { type, kind: { ext: 'txt', conversion: 'none' } };
  return undefined;
}

/** Decodes text by the charset the server named (UTF-8 when it named none or an unknown one). */
export function decodeText(bytes: Uint8Array, contentTypeHeader: string | undefined): string {
  const charset = /charset\s*=\s*"?([\w-]+)"?/i.exec(contentTypeHeader ?? '')?.[1];
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

function turndown(): TurndownService {
  const service = new TurndownService({ headingStyle: 'atx', codeBlockStyle: 'fenced', bulletListMarker: '-' });
  service.use(gfm);
  service.remove(['script', 'style', 'noscript', 'iframe', 'object', 'embed', 'form', 'button', 'select']);
  return service;
}

/**
 * An HTML page as readable markdown: Readability (Firefox's reader view) picks the article out
 * of the page, Turndown writes it as markdown, links made absolute against the page's URL.
 * A page Readability finds no article in is converted whole.
 */
export function htmlToMarkdown(html: string, url: string): { title?: string; markdown: string } {
  const { document } = parseHTML(html);
  if (!document.querySelector('base[href]')) {
    const base = document.createElement('base');
    base.setAttribute('href', url);
    (document.head ?? document.documentElement)?.prepend(base);
  }
  const pageTitle = document.querySelector('title')?.textContent?.trim() || undefined;
  const fallback = document.body?.innerHTML ?? html;
  let article: { title?: string | null; content?: string | null } | null = null;
  try {
    article = new Readability(document as unknown as ConstructorParameters<typeof Readability>[0]).parse();
  } catch {
    article = null;
  }
  const title = article?.title?.trim() || pageTitle;
  const markdown = turndown()
    .turndown(article?.content || fallback)
    .trim();
  return { ...(title ? { title } : {}), markdown: title ? `# ${title}\n\n${markdown}\n` : `${markdown}\n` };
}

/** A PDF's text, page by page (pdf.js through unpdf). Scanned pages without a text layer give nothing. */
export async function pdfToText(bytes: Uint8Array, truncated: boolean): Promise<{ title?: string; text: string }> {
  try {
    const { extractText, getDocumentProxy, getMeta } = await import('unpdf');
    const pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
    const { text } = await extractText(pdf, { mergePages: false });
    const info = (await getMeta(pdf)).info as { Title?: unknown } | undefined;
    const title = typeof info?.Title === 'string' && info.Title.trim() !== '' ? info.Title.trim() : undefined;
    const pages = text.map((page, i) => `## Page ${i + 1}\n\n${page.trim()}`).join('\n\n');
    return { ...(title ? { title } : {}), text: `${pages}\n` };
  } catch (err) {
    throw new WebError(
      truncated
        ? 'the PDF was cut at the fetch size limit (WEB_FETCH_MAX_BYTES) and cannot be read'
        : `the PDF cannot be read: ${(err as Error).message}`,
      { code: 'unreadable_pdf', retryable: false, cause: err },
    );
  }
}
