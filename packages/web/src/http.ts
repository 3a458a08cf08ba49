import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { WebError, WebTimeoutError } from './errors.js';
import type { Destination, EgressPolicy } from './policy.js';

export interface EgressRequestOptions {
  /** Default: GET. */
  method?: 'GET' | 'HEAD' | 'POST';
  /** Header names in any case; `host` is set from the URL. */
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Bytes of the (decoded) body kept; reading stops there and `truncated` is set. Default: 10 MiB. */
  maxBytes?: number;
  /** Time limit of the whole exchange, redirects and body included. Default: 30000. */
  timeoutMs?: number;
  /** Redirects followed, each vetted again; one more is an error. 0 returns the 3xx as it is. Default: 5. */
  maxRedirects?: number;
  signal?: AbortSignal;
  /**
   * Sees the final response's status and headers before its body is read; throwing refuses the
   * body unread (a fetch refuses a video without downloading it).
   */
  onResponse?: (response: { url: string; status: number; headers: Record<string, string> }) => void;
}

export interface EgressResponse {
  /** The final URL, after redirects. */
  url: string;
  status: number;
  /** Lowercase names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  truncated: boolean;
  /** The URLs redirected from, in order. */
  redirects: string[];
  /** The address the last connection went to. */
  address: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers that carry a credential for the origin they were meant for; dropped when a redirect leaves it. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization', 'x-subscription-token', 'x-api-key'];

/**
 * Answers the connection's lookup with the vetted address only. Node calls it for host names
 * (with `all: true` when it races IPv4 and IPv6); an IP literal is connected to as it is, and
 * was vetted as it is.
 */
function pinnedLookup(destination: Destination): LookupFunction {
  const expected = destination.url.hostname.replace(/^\[|\]$/g, '');
  return (hostname, options, callback) => {
    if (hostname !== expected) {
      callback(
        Object.assign(new Error(`lookup of ${hostname} outside the vetted destination`), { code: 'ENOTFOUND' }),
        '',
        4,
      );
      return;
    }
    if ((options as { all?: boolean }).all)
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [
        { address: destination.address, family: destination.family },
      ]);
    else callback(null, destination.address, destination.family);
  };
}

function decoded(res: IncomingMessage): Readable {
  const encoding = (res.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  switch (encoding) {
    case 'identity':
    case '':
      return res;
    case 'gzip':
    case 'x-gzip':
      return res.pipe(zlib.createGunzip());
    case 'deflate':
      return res.pipe(zlib.createInflate());
    case 'br':
      return res.pipe(zlib.createBrotliDecompress());
    default:
      throw new WebError(`the response is encoded as ${encoding}, which is not supported`, {
        code: 'unsupported_encoding',
        retryable: false,
      });
  }
}

/** Reads at most `maxBytes` of the decoded body; past that the connection is closed. */
async function readCapped(res: IncomingMessage, maxBytes: number): Promise<{ body: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  const stream = decoded(res);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const room = maxBytes - size;
      if (chunk.length > room) {
        if (room > 0) chunks.push(chunk.subarray(0, room));
        size = maxBytes;
        truncated = true;
        // Enough: stop reading (a decompression bomb or an endless body ends here).
        done(new Error('cap reached'));
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
      done();
    },
  });
  try {
    await pipeline(stream, sink);
  } catch (err) {
    if (!truncated) throw err;
    res.destroy();
  }
  return { body: Buffer.concat(chunks, size), truncated };
}

function flatHeaders(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function send(
  destination: Destination,
  method: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const { url } = destination;
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: destination.port,
        path: `${url.pathname}${url.search}`,
        method,
        headers: { ...headers, host: url.host },
        lookup: pinnedLookup(destination),
        // No pooled connection: each request connects to the address just vetted for it.
        agent: false,
        signal,
      },
      resolve,
    );
    req.on('error', reject);
    req.end(body);
  });
}

function lowerCase(headers: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
}

/**
 * Sends one request through the egress policy: every hop is vetted before its connection is
 * opened, and connected to the address the policy resolved (for the first hop, `input` may be
 * a Destination the caller got from `policy.vet`). Any status is returned as it is
 * (after following redirects); errors are WebErrors (`egress_denied`, `fetch_timeout`,
 * `too_many_redirects`, `fetch_failed`, `dns_failed`).
 */
export async function egressRequest(
  policy: EgressPolicy,
  input: string | URL | Destination,
  options: EgressRequestOptions = {},
): Promise<EgressResponse> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxRedirects = options.maxRedirects ?? 5;
  const timer = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timer]) : timer;
  let method: string = options.method ?? 'GET';
  let body = options.body;
  let headers = lowerCase(options.headers);
  const redirects: string[] = [];
  // A destination the caller vetted just now is used as it is: its host is not resolved twice.
  let vetted = typeof input === 'object' && 'address' in input ? input : undefined;
  let current = vetted ? vetted.url.href : String(input);
  const fail = (err: unknown, url: string): never => {
    if (err instanceof WebError) throw err;
    if (timer.aborted) throw new WebTimeoutError(url, timeoutMs);
    if (options.signal?.aborted) throw options.signal.reason;
    const e = err as NodeJS.ErrnoException;
    throw new WebError(`${url}: ${e.code ? `${e.code} ` : ''}${e.message}`, {
      code: 'fetch_failed',
      retryable: true,
      cause: err,
    });
  };
  for (;;) {
    if (signal.aborted) fail(signal.reason, current);
    const destination = vetted ?? (await policy.vet(current));
    vetted = undefined;
    let res: IncomingMessage;
    try {
      policy.connecting(destination);
      res = await send(destination, method, headers, body, signal);
    } catch (err) {
      return fail(err, destination.url.href);
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (REDIRECTS.has(status) && location && maxRedirects > 0) {
      res.destroy();
      if (redirects.length >= maxRedirects)
        throw new WebError(`${redirects[0] ?? destination.url.href} redirected more than ${maxRedirects} times`, {
          code: 'too_many_redirects',
          retryable: false,
        });
      const next = new URL(location, destination.url);
      redirects.push(destination.url.href);
      if (next.origin !== destination.url.origin)
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.includes(k)));
      if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !k.startsWith('content-')));
      }
      current = next.href;
      continue;
    }
    try {
      options.onResponse?.({ url: destination.url.href, status, headers: flatHeaders(res) });
      const { body: content, truncated } =
        method === 'HEAD'
          ? { body: Buffer.alloc(0), truncated: false }
          : await readCapped(res, options.maxBytes ?? 10 * 1024 * 1024);
      return {
        url: destination.url.href,
        status,
        headers: flatHeaders(res),
        body: content,
        truncated,
        redirects,
        address: destination.address,
      };
    } catch (err) {
      res.destroy();
      return fail(err, destination.url.href);
    }
  }
}
