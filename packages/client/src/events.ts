import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { FINAL_STATUSES, TaskEvent } from '@research/contracts';
import { ApiError, ProtocolError, ResearchError } from './errors.js';
import type { Transport } from './transport.js';

export interface EventsOptions {
  /** Resume after this stream id (sent as `Last-Event-ID`). Default: from the start. */
  lastEventId?: string;
  /** Ends the stream (the iterator just returns). */
  signal?: AbortSignal;
  /**
   * How long to keep reconnecting while the API is unreachable (it may be restarting) before
   * giving up with the last error. Default: 60 s. 0 disables reconnecting.
   */
  reconnectForMs?: number;
  /**
   * Consecutive failed attempts (an error answer, a refused connection, a stream that ended
   * without an event) after which the iterator gives up with the last error, however young the
   * outage. Default: 6 (about 13 s with the default delays).
   */
  maxFailures?: number;
  /** First reconnect delay; doubles up to 5 s. A `retry:` field from the server replaces it. Default: 250 ms. */
  reconnectDelayMs?: number;
  /** Told about every reconnect attempt, e.g. to show "reconnecting…". */
  onReconnect?: (info: { attempt: number; lastEventId: string | undefined; reason: string }) => void;
  /** Told each time a connection is open and its events are about to flow (the first one and every reconnect). */
  onOpen?: () => void;
}

/** One event of a task's stream, with the stream id that `Last-Event-ID` resumes after. */
export interface StreamedEvent {
  id: string;
  event: TaskEvent;
}

/**
 * `GET /v1/jobs/:id/events` as an async iterator that ends after the task's final `status`
 * event. When the connection drops before that (the API restarted, a proxy cut it), it
 * reconnects with `Last-Event-ID` and yields every event exactly once.
 */
export async function* streamEvents(
  transport: Transport,
  path: string,
  options: EventsOptions = {},
): AsyncGenerator<StreamedEvent, void, undefined> {
  const reconnectForMs = options.reconnectForMs ?? 60_000;
  const maxFailures = options.maxFailures ?? 6;
  let delayMs = options.reconnectDelayMs ?? 250;
  let lastEventId = options.lastEventId;
  // The server honours Last-Event-ID; the set is a second guard so a replay can never print twice.
  const seen = new Set<string>();
  let attempt = 0;
  let failingSince: number | undefined;

  for (;;) {
    if (options.signal?.aborted) return;
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let reason: string;
    let lastError: unknown;
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      const res = await transport.open('GET', path, { headers, signal: controller.signal });
      // Caller mistakes (401, 404, 400) do not heal by retrying; 5xx and 429 may.
      if (!res.ok) {
        const error = await ApiError.from(res);
        if (res.status < 500 && res.status !== 429) throw error;
        throw Object.assign(error, { retryable: true });
      }
      // The server's "nothing will follow": a reconnect after the task's final event.
      if (res.status === 204) return;
      if (!res.body) throw new ProtocolError('the events response has no body');
      options.onOpen?.();

      const pending: EventSourceMessage[] = [];
      const parser = createParser({
        onEvent: (m) => pending.push(m),
        onRetry: (ms) => {
          delayMs = ms;
        },
      });
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        while (pending.length > 0) {
          const message = pending.shift()!;
          const event = parseEvent(message);
          if (!event) continue;
          // Only a stream that delivers counts as healthy: one that answers 200 and ends at once is failing.
          failingSince = undefined;
          attempt = 0;
          if (message.id !== undefined) {
            lastEventId = message.id;
            if (seen.has(message.id)) continue;
            seen.add(message.id);
          }
          yield { id: message.id ?? '', event };
          if (event.type === 'status' && FINAL_STATUSES.includes(event.status)) return;
        }
      }
      reason = 'the stream ended before the task finished';
    } catch (err) {
      if (options.signal?.aborted) return;
      if (err instanceof ApiError && !(err as { retryable?: boolean }).retryable) throw err;
      if (err instanceof ProtocolError) throw err;
      lastError = err instanceof ResearchError ? err : transport.wrap(err, path);
      reason = (lastError as Error).message;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      controller.abort();
    }

    failingSince ??= Date.now();
    attempt += 1;
    if (reconnectForMs <= 0 || Date.now() - failingSince > reconnectForMs || attempt >= maxFailures) {
      throw lastError ?? new ProtocolError(`${path}: ${reason}`);
    }
    options.onReconnect?.({ attempt, lastEventId, reason });
    await sleep(Math.min(delayMs * 2 ** Math.min(attempt - 1, 5), 5_000), options.signal);
  }
}

function parseEvent(message: EventSourceMessage): TaskEvent | undefined {
  try {
    const parsed = TaskEvent.safeParse(JSON.parse(message.data));
    // Event types this client does not know yet are skipped, not fatal: the API may be newer.
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
