import { STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ApiErrorBody } from '@research/contracts';

/** Longest a client may take to send its request line and headers. */
export const HEADERS_TIMEOUT_MS = 15_000;
/**
 * Longest a client may take to send a whole request. Routes that read a body cut it sooner
 * (`BODY_TIMEOUT_MS`); this is the outer bound for everything else.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Timeouts, and the errors Node answers before Express sees a request (malformed HTTP,
 * oversized headers, a request that timed out) in the API's error shape instead of Node's bare
 * status lines — wherever Node still lets us write: not once a response has started.
 */
export function configureHttpServer(server: Server): Server {
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || started) {
      socket.destroy();
      return;
    }
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'request headers are too large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'request_timeout', `the request did not arrive within ${REQUEST_TIMEOUT_MS} ms`]
          : [400, 'bad_request', 'malformed HTTP request'];
    const body = JSON.stringify({ error: { code, message } } satisfies ApiErrorBody);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
