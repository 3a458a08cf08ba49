import http from 'node:http';
import { createParser } from 'eventsource-parser';

/** One event of a task's stream as a client sees it: the SSE id, type and parsed data. */
export interface StreamedEvent {
  id: string;
  type: string;
  data: unknown;
}

/**
 * Feeds an SSE body to `onEvent` until it ends. A connection that breaks rejects, unless
 * `signal` was aborted (the reader chose to stop).
 */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: StreamedEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  const parser = createParser({
    onEvent: (e) => onEvent({ id: e.id ?? '', type: e.event ?? 'message', data: JSON.parse(e.data) as unknown }),
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>)
      parser.feed(decoder.decode(chunk, { stream: true }));
  } catch (err) {
    if (!signal?.aborted) throw err;
  }
}

/** One SSE message as sent, its data unparsed. */
export interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
}

export interface SseClient {
  status: number;
  headers: http.IncomingHttpHeaders;
  messages: SseMessage[];
  /** Raw text received, comments included. */
  text: () => string;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Resolves once at least `n` messages with data arrived, or the stream ended, or `timeoutMs` (default 5 s) passed. */
  waitFor(n: number, timeoutMs?: number): Promise<SseMessage[]>;
  close(): void;
}

/**
 * A minimal SSE reader over `node:http`, for asserting what a client sees on the wire, message
 * by message: comments, retry hints and the exact moment the server ends the stream.
 */
export function sse(port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream', ...headers }, agent: false },
      (res) => {
        res.setEncoding('utf8');
        let buffer = '';
        let all = '';
        const messages: SseMessage[] = [];
        const waiters: (() => void)[] = [];
        const wake = () => {
          for (const w of waiters.splice(0)) w();
        };
        let endResolve!: () => void;
        const ended = new Promise<void>((r) => {
          endResolve = r;
        });
        res.on('data', (chunk: string) => {
          all += chunk;
          buffer += chunk;
          for (let idx = buffer.indexOf('\n\n'); idx >= 0; idx = buffer.indexOf('\n\n')) {
            const message = parseBlock(buffer.slice(0, idx));
            buffer = buffer.slice(idx + 2);
            if (message.data !== undefined) messages.push(message);
          }
          wake();
        });
        for (const event of ['end', 'close'])
          res.on(event, () => {
            endResolve();
            wake();
          });
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          messages,
          text: () => all,
          ended,
          async waitFor(n, timeoutMs = 5_000) {
            const deadline = Date.now() + timeoutMs;
            while (messages.length < n) {
              if (res.readableEnded || Date.now() > deadline) break;
              await new Promise<void>((r) => {
                waiters.push(r);
                setTimeout(r, 100);
              });
            }
            return messages;
          },
          close() {
            req.destroy();
          },
        });
      },
    );
    req.on('error', reject);
  });
}

function parseBlock(block: string): SseMessage {
  const message: SseMessage = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') message.id = value;
    else if (field === 'event') message.event = value;
    else if (field === 'data') message.data = message.data === undefined ? value : `${message.data}\n${value}`;
  }
  return message;
}
