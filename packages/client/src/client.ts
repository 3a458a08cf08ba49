import {
  BatchResult,
  ResultFile,
  TaskAccepted,
  TaskList,
  TaskView,
  UsageReport,
  WebhookDeliveries,
  type BatchItem,
  type TaskListItem,
  type TaskListQuery,
  type TaskRequest,
  type UsageQuery,
} from '@research/contracts';
import { ApiError, ProtocolError } from './errors.js';
import { streamEvents, type EventsOptions, type StreamedEvent } from './events.js';
import { Transport, parse, type ClientOptions, type Schema } from './transport.js';

const ResultFiles: Schema<ResultFile[]> = ResultFile.array();
const Health: Schema<{ ok: true }> = {
  safeParse: (v) =>
    isRecord(v) && v.ok === true
      ? { success: true, data: { ok: true } }
      : { success: false, error: { issues: [{ message: 'expected {"ok":true}', path: [] }] } },
};

/** `GET /v1/jobs` filters and paging; every field optional (`limit` [20], at most 100). */
export type ListQuery = Partial<TaskListQuery>;

/** `GET /v1/usage` range (`YYYY-MM-DD`, UTC days, inclusive). */
export type UsageQueryOptions = Partial<UsageQuery>;

/** A task's archive as it streams in. */
export interface ArchiveDownload {
  /** The `.tar.gz` bytes; read it to the end or cancel it. */
  body: ReadableStream<Uint8Array>;
  /** The name the API suggests (`research-<id>.tar.gz`). */
  filename: string;
  /** Files in the archive, when the API said. */
  files?: number;
  /** Files listed but too big to have been kept, so not in the archive, when the API said. */
  omittedFiles?: number;
}

export interface SubmitOptions {
  /** Sent as `Idempotency-Key`: a repeat with the same key and body answers the same task (24 h). */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/**
 * The typed client of the research API v1. Every method throws an `ApiError` (a subclass for
 * 400, 401, 404, 409, 429) carrying the API's `status`, `code` and `message`, or a
 * `ConnectionError`, `TimeoutError` or `ProtocolError`.
 */
export class ResearchClient {
  protected readonly http: Transport;

  constructor(options: ClientOptions) {
    this.http = new Transport(options);
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  /** `POST /v1/jobs`: queues a task (202). */
  submit(request: TaskRequest, options: SubmitOptions = {}): Promise<TaskAccepted> {
    return this.http.json('POST', '/v1/jobs', TaskAccepted, {
      json: request,
      ...(options.idempotencyKey ? { headers: { 'idempotency-key': options.idempotencyKey } } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** `GET /v1/jobs/:id`: status, progress, steps, result or error. */
  get(id: string, options: { signal?: AbortSignal } = {}): Promise<TaskView> {
    return this.http.json('GET', jobPath(id), TaskView, options);
  }

  /** `POST /v1/jobs/:id/cancel`: stops a queued or running task; the view after the request. 409 `already_finished` for a final one. */
  cancel(id: string): Promise<TaskView> {
    return this.http.json('POST', `${jobPath(id)}/cancel`, TaskView);
  }

  /** `GET /v1/jobs/:id/files`: the task's kept files. */
  async files(id: string): Promise<ResultFile[]> {
    const res = await this.http.request('GET', `${jobPath(id)}/files`);
    const body: unknown = await res.json().catch(() => undefined);
    return parse(ResultFiles, isRecord(body) ? body.files : undefined, 'GET /v1/jobs/:id/files');
  }

  /** `GET /v1/jobs/:id/files/<path>`: one file's bytes. */
  async file(id: string, path: string): Promise<Buffer> {
    const res = await this.http.request('GET', filePath(id, path));
    return Buffer.from(await res.arrayBuffer());
  }

  /** Where a file of a task can be fetched (with the bearer key). */
  fileUrl(id: string, path: string): string {
    return this.http.url(filePath(id, path));
  }

  /**
   * `GET /v1/jobs/:id/events` as an async iterator: past events, then live ones; it ends after
   * the final `status` event. A dropped connection is resumed with `Last-Event-ID`, so every
   * event comes once.
   */
  events(id: string, options: EventsOptions = {}): AsyncGenerator<StreamedEvent, void, undefined> {
    return streamEvents(this.http, `${jobPath(id)}/events`, options);
  }

  /** `GET /v1/jobs`: one page of the caller's tasks, newest first; pass `nextCursor` back as `cursor` for the next. */
  list(query: ListQuery = {}): Promise<TaskList> {
    return this.http.json('GET', '/v1/jobs', TaskList, { query: { ...query } });
  }

  /** Every task `query` matches, newest first, following `nextCursor` page by page (`limit` is the page size). */
  async *listAll(query: Omit<ListQuery, 'cursor'> = {}): AsyncGenerator<TaskListItem, void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await this.list(cursor === undefined ? query : { ...query, cursor });
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }

  /**
   * `POST /v1/jobs/batch`: up to `MAX_BATCH_TASKS` (1,000) tasks in one request. The answer has one
   * result per item, in order: `{id}` or `{error: {code, message}}`; an invalid item does not stop
   * the others. Each item may carry its own `idempotencyKey`, so resending a batch is safe.
   */
  batch(tasks: BatchItem[], options: { signal?: AbortSignal } = {}): Promise<BatchResult> {
    return this.http.json('POST', '/v1/jobs/batch', BatchResult, { json: { tasks }, ...options });
  }

  /**
   * `GET /v1/jobs/:id/archive`: the task's kept files as one `.tar.gz`, streamed (the request
   * timeout holds until the headers; `signal` ends the body).
   */
  async archive(id: string, options: { signal?: AbortSignal } = {}): Promise<ArchiveDownload> {
    const res = await this.http.open('GET', `${jobPath(id)}/archive`, options);
    if (!res.ok) throw await ApiError.from(res);
    if (!res.body) throw new ProtocolError('the archive response has no body');
    const count = (name: string) => {
      const v = res.headers.get(name);
      return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
    };
    const files = count('x-archive-files');
    const omittedFiles = count('x-archive-omitted-files');
    return {
      body: res.body,
      filename: /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `research-${id}.tar.gz`,
      ...(files !== undefined ? { files } : {}),
      ...(omittedFiles !== undefined ? { omittedFiles } : {}),
    };
  }

  /** `DELETE /v1/jobs/:id`: removes a final task and all it left (204). A queued or running one is a 409 `ConflictError`: cancel it first. */
  async delete(id: string): Promise<void> {
    const res = await this.http.request('DELETE', jobPath(id));
    await res.body?.cancel();
  }

  /** `GET /v1/usage`: the tenant's usage per UTC day from `from` to `to` (inclusive; default the last 30 days) and summed. */
  usage(query: UsageQueryOptions = {}): Promise<UsageReport> {
    return this.http.json('GET', '/v1/usage', UsageReport, { query: { ...query } });
  }

  /** `GET /v1/jobs/:id/webhooks`: the task's webhook and every delivery with its attempts. */
  webhooks(id: string): Promise<WebhookDeliveries> {
    return this.http.json('GET', `${jobPath(id)}/webhooks`, WebhookDeliveries);
  }

  /** `GET /healthz`: the process answers (no key needed). */
  health(): Promise<{ ok: true }> {
    return this.http.json('GET', '/healthz', Health);
  }

  /** `GET /readyz`: the API can reach Redis; a `503 redis_unavailable` ApiError otherwise. */
  ready(): Promise<{ ok: true }> {
    return this.http.json('GET', '/readyz', Health);
  }

  /** `GET /metrics`: the Prometheus text exposition. */
  async metrics(): Promise<string> {
    return (await this.http.request('GET', '/metrics')).text();
  }

  /** `GET /openapi.json`: the OpenAPI document of the routes. */
  async openApi(): Promise<Record<string, unknown>> {
    const res = await this.http.request('GET', '/openapi.json');
    const body: unknown = await res.json();
    if (!isRecord(body) || typeof body.openapi !== 'string')
      throw new ProtocolError('unexpected answer to GET /openapi.json: not an OpenAPI document');
    return body;
  }
}

export function jobPath(id: string): string {
  return `/v1/jobs/${encodeURIComponent(id)}`;
}

function filePath(id: string, path: string): string {
  const clean = path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  return `${jobPath(id)}/files/${clean}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
