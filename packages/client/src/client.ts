import { ResultFile, TaskAccepted, TaskView, type TaskRequest } from '@research/contracts';
import { ProtocolError } from './errors.js';
import { streamEvents, type EventsOptions, type StreamedEvent } from './events.js';
import { Transport, parse, type ClientOptions, type Schema } from './transport.js';

const ResultFiles: Schema<ResultFile[]> = ResultFile.array();
const Health: Schema<{ ok: true }> = {
  safeParse: (v) =>
    isRecord(v) && v.ok === true
      ? { success: true, data: { ok: true } }
      : { success: false, error: { issues: [{ message: 'expected {"ok":true}', path: [] }] } },
};

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
