import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { FINAL_STATUSES, ResultFile, TaskAccepted, TaskEvent, TaskView, type TaskRequest } from '@research/contracts';
import { ApiError, ConnectionError, ProtocolError, ResearchError, TimeoutError, socketErrorCode } from './errors.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

export interface ClientOptions {
  /** Base URL of the API. Default: `http://127.0.0.1:3000`. */
  baseUrl?: string;
  /** Bearer key sent on every request. */
  apiKey: string;
  /** Timeout of one non-streaming request. Default: 30 s. */
  requestTimeoutMs?: number;
  /** Injected for tests. Default: the global fetch. */
  fetch?: typeof fetch;
}

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
}

/** One event of a task's stream, with the stream id that `Last-Event-ID` resumes after. */
export interface StreamedEvent {
  id: string;
  event: TaskEvent;
}

/** Any zod schema; typed structurally so the CLI needs no zod of its own. */
interface Schema<T> {
  safeParse(
    value: unknown,
  ): { success: true; data: T } | { success: false; error: { issues: readonly { message: string }[] } };
}

const ResultFiles: Schema<ResultFile[]> = ResultFile.array();

/** A thin typed client of the HTTP API v1. Every method throws `ApiError`, `ConnectionError`, `TimeoutError` or `ProtocolError`. */
export class ResearchClient {
  readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly requestTimeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_API_URL).replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** `POST /v1/jobs`. */
  async submit(request: TaskRequest, options: { idempotencyKey?: string } = {}): Promise<TaskAccepted> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    const res = await this.request('POST', '/v1/jobs', { headers, body: JSON.stringify(request) });
    return parse(TaskAccepted, await res.json(), 'POST /v1/jobs');
  }

  /** `GET /v1/jobs/:id`. */
  async get(id: string): Promise<TaskView> {
    const res = await this.request('GET', this.jobPath(id));
    return parse(TaskView, await res.json(), 'GET /v1/jobs/:id');
  }

  /** `POST /v1/jobs/:id/cancel`. */
  async cancel(id: string): Promise<void> {
    const res = await this.request('POST', `${this.jobPath(id)}/cancel`);
    await res.body?.cancel();
  }

  /** `GET /v1/jobs/:id/files`. */
  async files(id: string): Promise<ResultFile[]> {
    const res = await this.request('GET', `${this.jobPath(id)}/files`);
    const body = (await res.json()) as { files?: unknown };
    return parse(ResultFiles, body?.files, 'GET /v1/jobs/:id/files');
  }

  /** `GET /v1/jobs/:id/files/<path>`: the file's bytes. */
  async file(id: string, path: string): Promise<Buffer> {
    const res = await this.request('GET', this.filePath(id, path));
    return Buffer.from(await res.arrayBuffer());
  }

  /** Where a file of a task can be fetched (with the bearer key). */
  fileUrl(id: string, path: string): string {
    return `${this.baseUrl}${this.filePath(id, path)}`;
  }

  /**
   * `GET /v1/jobs/:id/events` as an async iterator. The iterator ends after the task's final
   * `status` event. When the connection drops before that (the API restarted, a proxy cut it),
   * it reconnects with `Last-Event-ID` and yields every event exactly once.
   */
  async *events(id: string, options: EventsOptions = {}): AsyncGenerator<StreamedEvent, void, undefined> {
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
        const res = await this.send('GET', `${this.jobPath(id)}/events`, { headers, signal: controller.signal });
        // Caller mistakes (401, 404, 400) do not heal by retrying; 5xx and 429 may.
        if (!res.ok) {
          const error = await ApiError.from(res);
          if (res.status < 500 && res.status !== 429) throw error;
          throw Object.assign(error, { retryable: true });
        }
        // The server's "nothing will follow": a reconnect after the task's final event.
        if (res.status === 204) return;
        if (!res.body) throw new ProtocolError('the events response has no body');

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
        lastError = err instanceof ResearchError ? err : this.wrap(err, `${this.jobPath(id)}/events`);
        reason = (lastError as Error).message;
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
        controller.abort();
      }

      failingSince ??= Date.now();
      attempt += 1;
      if (reconnectForMs <= 0 || Date.now() - failingSince > reconnectForMs || attempt >= maxFailures) {
        throw lastError ?? new ProtocolError(`events of ${id}: ${reason}`);
      }
      options.onReconnect?.({ attempt, lastEventId, reason });
      await sleep(Math.min(delayMs * 2 ** Math.min(attempt - 1, 5), 5_000), options.signal);
    }
  }

  private jobPath(id: string): string {
    return `/v1/jobs/${encodeURIComponent(id)}`;
  }

  private filePath(id: string, path: string): string {
    const clean = path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
    return `${this.jobPath(id)}/files/${clean}`;
  }

  /** A request that must succeed (2xx) within the request timeout. */
  private async request(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: string } = {},
  ): Promise<Response> {
    const signal = AbortSignal.timeout(this.requestTimeoutMs);
    let res: Response;
    try {
      res = await this.send(method, path, { ...init, signal });
    } catch (err) {
      if (signal.aborted) throw new TimeoutError(`${this.baseUrl}${path}`, this.requestTimeoutMs);
      throw err;
    }
    if (!res.ok) throw await ApiError.from(res);
    return res;
  }

  private async send(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: string; signal?: AbortSignal },
  ): Promise<Response> {
    try {
      return await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.apiKey}`, ...init.headers },
        ...(init.body !== undefined ? { body: init.body } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw this.wrap(err, path);
    }
  }

  private wrap(err: unknown, path: string): ResearchError {
    if (err instanceof ResearchError) return err;
    return new ConnectionError(`${this.baseUrl}${path}`, socketErrorCode(err), { cause: err });
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

function parse<T>(schema: Schema<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success)
    throw new ProtocolError(`unexpected answer to ${what}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
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
