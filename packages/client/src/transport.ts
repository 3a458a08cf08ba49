import { ApiError, ConnectionError, ProtocolError, ResearchError, TimeoutError, socketErrorCode } from './errors.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

export interface ClientOptions {
  /** Base URL of the API. Default: `http://127.0.0.1:3000`. */
  baseUrl?: string;
  /** Bearer key sent on every request. */
  apiKey: string;
  /**
   * Timeout of one request: the whole exchange for JSON answers, until the headers for
   * streamed ones (events, archives, files), whose bodies may take as long as they take.
   * Default: 30 s.
   */
  requestTimeoutMs?: number;
  /** Another fetch (a proxying one, say). Default: the global fetch. */
  fetch?: typeof fetch;
}

export interface RequestInit {
  headers?: Record<string, string>;
  /** Sent as JSON. */
  json?: unknown;
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | number | undefined>;
  /** Ends the request (and a streamed body) early. */
  signal?: AbortSignal;
}

/** Any zod schema; typed structurally so the client needs no zod of its own. */
export interface Schema<T> {
  safeParse(
    value: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: readonly { message: string; path: readonly PropertyKey[] }[] } };
}

/** HTTP to the API: the key, timeouts, and failures turned into the client's errors. */
export class Transport {
  readonly baseUrl: string;
  private readonly apiKey: string;
  readonly requestTimeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_API_URL).replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** A JSON answer, checked against `schema`. */
  async json<T>(method: string, path: string, schema: Schema<T>, init: RequestInit = {}): Promise<T> {
    const res = await this.request(method, path, init);
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      throw new ProtocolError(`the answer to ${method} ${path} is not JSON`, { cause: err });
    }
    return parse(schema, body, `${method} ${path}`);
  }

  /** A request that must succeed (2xx) within the request timeout, body included. */
  async request(method: string, path: string, init: RequestInit = {}): Promise<Response> {
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      const res = await this.send(method, path, { ...init, signal });
      if (!res.ok) throw await ApiError.from(res);
      return res;
    } catch (err) {
      if (timeout.aborted && !init.signal?.aborted) throw new TimeoutError(this.url(path), this.requestTimeoutMs);
      throw err;
    }
  }

  /**
   * A request whose body is read by the caller: the timeout holds until the headers arrive, and
   * `init.signal` ends the body. Error statuses are returned, not thrown, so streams can decide
   * which ones to retry.
   */
  async open(method: string, path: string, init: RequestInit = {}): Promise<Response> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(init.signal?.reason);
    if (init.signal?.aborted) onAbort();
    init.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => controller.abort(new TimeoutError(this.url(path), this.requestTimeoutMs)),
      this.requestTimeoutMs,
    );
    try {
      return await this.send(method, path, { ...init, signal: controller.signal });
    } catch (err) {
      const reason: unknown = controller.signal.reason;
      if (reason instanceof TimeoutError) throw reason;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  url(path: string, query?: RequestInit['query']): string {
    const entries = Object.entries(query ?? {}).filter((e): e is [string, string | number] => e[1] !== undefined);
    const search =
      entries.length > 0 ? `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)]))}` : '';
    return `${this.baseUrl}${path}${search}`;
  }

  private async send(method: string, path: string, init: RequestInit): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, ...init.headers };
    if (init.json !== undefined) headers['content-type'] = 'application/json';
    try {
      return await this.fetchImpl(this.url(path, init.query), {
        method,
        headers,
        ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw this.wrap(err, path);
    }
  }

  wrap(err: unknown, path: string): ResearchError {
    if (err instanceof ResearchError) return err;
    return new ConnectionError(this.url(path), socketErrorCode(err), { cause: err });
  }
}

export function parse<T>(schema: Schema<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
    throw new ProtocolError(`unexpected answer to ${what}: ${where}${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}
