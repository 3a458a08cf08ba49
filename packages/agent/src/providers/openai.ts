import OpenAI, { type ClientOptions } from 'openai';
import { Agent, type Dispatcher, request } from 'undici';
import type {
  ChatCompletionMessageParam,
  ChatCompletionCreateParamsNonStreaming,
} from 'openai/resources/chat/completions';
import { AgentAbortError, LlmError } from '../errors.js';
import { silentLogger, type AgentLogger } from '../logger.js';
import type { ModelDelta, ModelProvider, ModelRequest, ModelTurn } from '../provider.js';
import type { AgentMessage, NativeToolCall } from '../state.js';
import { StreamStalledError, streamed } from './openai-stream.js';

export interface OpenAIProviderOptions {
  /** Base URL of any OpenAI-compatible endpoint. Default: the SDK's (api.openai.com). */
  baseURL?: string;
  /** Default: a placeholder, since local endpoints often need none. */
  apiKey?: string;
  model: string;
  /**
   * Time limit of one HTTP attempt, from sending the request to the last byte of the response
   * body. The whole call is then bounded by (maxRetries + 1) attempts plus the SDK's backoff
   * between them. Default: 120000.
   */
  timeoutMs?: number;
  /** Retries on 408/409/429/5xx and connection errors, done by the SDK with backoff. Default: 2. */
  maxRetries?: number;
  /**
   * Stream answers (`stream: true`, LLM_STREAM): the request's `onDelta` sees them as they come
   * and the turn is the same as without streaming. A stream that goes quiet for `timeoutMs`
   * fails like a timed-out request. Default: false.
   */
  stream?: boolean;
  logger?: AgentLogger;
}

function toChatMessage(m: AgentMessage, format: ModelRequest['format']): ChatCompletionMessageParam {
  switch (m.role) {
    case 'system':
    case 'user':
      return { role: m.role, content: m.content };
    case 'assistant':
      if (format === 'native' && m.toolCalls && m.toolCalls.length > 0) {
        return {
          role: 'assistant',
          content: m.content === '' ? null : m.content,
          tool_calls: m.toolCalls.map((c) => ({
            id: c.id,
            type: 'function',
            function: { name: c.name, arguments: c.arguments },
          })),
        };
      }
      return { role: 'assistant', content: m.content };
    case 'tool':
      return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
  }
}

/** `: fetch failed: connect ECONNREFUSED …` from an error's causes, for a message a person can act on. */
function causes(cause: unknown): string {
  let out = '';
  for (let c = cause, depth = 0; c instanceof Error && depth < 4; c = c.cause, depth++) out += `: ${c.message}`;
  return out;
}

const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * The connection pool of this process's model requests (undici's `Agent`, the client under
 * Node's own fetch): keep-alive connections shared by every task the worker runs.
 */
const modelPool = new Agent();

/**
 * fetch that resolves only once the whole response body is in. The SDK's timeout (and its
 * retry on timeout) only runs until fetch resolves, i.e. until the headers: an endpoint that
 * sent headers and then stalled mid-body held the task until its own budget ran out. Buffering
 * here puts the body under the same timer and the same abort signal (the SDK links the caller's
 * signal to it), so a stalled body is a timed-out attempt the SDK retries like any other. The
 * SDK reads a non-streamed body whole anyway; streamed answers (LLM_STREAM) use a client of
 * their own without this, bounded by an idle timer instead (openai-stream.ts).
 *
 * The request goes out with undici's `request` rather than fetch: for a body read whole it does
 * the same HTTP with under half of fetch's CPU (no WHATWG Request, body stream or response
 * cloning per call), which counts when a worker keeps hundreds of tasks talking to the model.
 * It follows no redirects and asks for no compression (`accept-encoding: identity`); a body
 * that is not a string (never, for chat completions) goes through fetch as before.
 */
const fetchWholeBody: NonNullable<ClientOptions['fetch']> = async (input, init) => {
  const body = init?.body;
  if (!(typeof input === 'string' || input instanceof URL) || (body != null && typeof body !== 'string')) {
    const response = await fetch(input, init);
    const whole = NULL_BODY_STATUSES.has(response.status) ? null : await response.arrayBuffer();
    return new Response(whole, { status: response.status, statusText: response.statusText, headers: response.headers });
  }
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  new Headers(init?.headers).forEach((value, name) => {
    headers[name] = value;
  });
  const answer = await request(input, {
    method: (init?.method ?? 'GET') as Dispatcher.HttpMethod,
    headers,
    body: body ?? null,
    signal: init?.signal ?? undefined,
    dispatcher: modelPool,
  });
  let whole = Buffer.alloc(0);
  if (NULL_BODY_STATUSES.has(answer.statusCode)) await answer.body.dump();
  else whole = Buffer.from(await answer.body.arrayBuffer());
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
    else if (value !== undefined) responseHeaders.append(name, value);
  }
  return new BufferedResponse(whole, { status: answer.statusCode, headers: responseHeaders });
};

/**
 * A `Response` whose body is already in memory: `text`, `json` and `arrayBuffer` answer from
 * the buffer. A `Response` built from a body sets up a web stream and reads it back on `json()`:
 * 17 µs per answer built and read, against 4 µs this way (too little to show in the bench's
 * `llm` part). Status, headers and `ok` are the real class's. `body` is null: the SDK reads a
 * non-streamed answer only through these methods (a streamed one goes through a client of its
 * own, with Node's fetch).
 */
export class BufferedResponse extends Response {
  readonly #bytes: Buffer;
  #read = false;

  constructor(bytes: Buffer, init: ResponseInit) {
    super(null, init);
    this.#bytes = bytes;
  }

  /** The body, once, like a real `Response` (a second read is a TypeError). */
  #take(): Buffer {
    if (this.#read) throw new TypeError('Body is unusable: Body has already been read');
    this.#read = true;
    return this.#bytes;
  }

  // Own properties, as the DOM types declare these (not methods).
  override readonly text = async (): Promise<string> => this.#take().toString('utf8');

  override readonly json = async (): Promise<unknown> => JSON.parse(await this.text());

  override readonly arrayBuffer = async (): Promise<ArrayBuffer> => {
    const b = this.#take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  };
}

/**
 * Any OpenAI-compatible chat-completions endpoint, through the official SDK (which does the
 * retries with backoff and honours Retry-After). Throws LlmError once the SDK gives up.
 */
export class OpenAIProvider implements ModelProvider {
  readonly name = 'openai';
  readonly model: string;
  readonly #client: OpenAI;
  readonly #maxRetries: number;
  readonly #timeoutMs: number;
  readonly #logger: AgentLogger;
  readonly #stream: boolean;
  #streamClient: OpenAI | undefined;

  constructor(options: OpenAIProviderOptions) {
    this.model = options.model;
    this.#maxRetries = options.maxRetries ?? 2;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    this.#logger = options.logger ?? silentLogger;
    this.#stream = options.stream ?? false;
    this.#client = this.#makeClient(options, fetchWholeBody);
    // A streamed body must not be buffered: that client reads it as it comes.
    if (this.#stream) this.#streamClient = this.#makeClient(options, fetch);
  }

  #makeClient(options: OpenAIProviderOptions, fetchFn: NonNullable<ClientOptions['fetch']>): OpenAI {
    const log = this.#logger;
    return new OpenAI({
      apiKey: options.apiKey || 'not-needed',
      ...(options.baseURL ? { baseURL: options.baseURL } : {}),
      timeout: this.#timeoutMs,
      maxRetries: this.#maxRetries,
      fetch: fetchFn,
      // The SDK reports its retries at info level; keep them, but in our logs.
      logLevel: 'info',
      logger: {
        debug: () => {},
        info: (message: string) => log.debug({ provider: 'openai' }, message),
        warn: (message: string) => log.warn({ provider: 'openai' }, message),
        error: (message: string) => log.error({ provider: 'openai' }, message),
      },
    });
  }

  async complete(
    request: ModelRequest,
    signal: AbortSignal,
    onDelta?: (delta: ModelDelta) => void,
  ): Promise<ModelTurn> {
    const model = request.model ?? this.model;
    const body: ChatCompletionCreateParamsNonStreaming = {
      model,
      messages: request.messages.map((m) => toChatMessage(m, request.format)),
      ...(request.format === 'native' && request.tools.length > 0
        ? { tools: request.tools.map((t) => ({ type: 'function' as const, function: t.function })) }
        : {}),
    };
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    try {
      completion =
        this.#streamClient && onDelta
          ? await streamed(this.#streamClient, body, signal, this.#timeoutMs, onDelta)
          : await this.#client.chat.completions.create(body, { signal });
    } catch (err) {
      throw this.#toError(err, model, signal);
    }
    const choice = completion.choices[0];
    if (!choice)
      throw new LlmError(`the model endpoint answered without any choice (model ${model})`, {
        retryable: true,
        attempts: 1,
      });
    const toolCalls: NativeToolCall[] = (choice.message.tool_calls ?? []).flatMap((c) =>
      c.type === 'function' ? [{ id: c.id, name: c.function.name, arguments: c.function.arguments }] : [],
    );
    return {
      text: choice.message.content ?? '',
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(completion.usage
        ? {
            usage: {
              promptTokens: completion.usage.prompt_tokens,
              completionTokens: completion.usage.completion_tokens,
            },
          }
        : {}),
    };
  }

  #toError(err: unknown, model: string, signal: AbortSignal): Error {
    if (err instanceof OpenAI.APIUserAbortError || signal.aborted) return new AgentAbortError('cancelled');
    if (err instanceof StreamStalledError)
      return new LlmError(`the model's stream went quiet for ${this.#timeoutMs} ms (model ${model})`, {
        retryable: true,
        attempts: 1,
        cause: err,
      });
    const attempts = this.#maxRetries + 1;
    if (err instanceof OpenAI.APIConnectionTimeoutError) {
      return new LlmError(
        `the model endpoint did not answer in time (model ${model}, ${attempts} attempt${attempts === 1 ? '' : 's'} of at most ${this.#timeoutMs} ms each)`,
        { retryable: true, attempts, cause: err },
      );
    }
    if (err instanceof OpenAI.APIConnectionError) {
      // Refused, reset, or closed half-way through the answer: the SDK only says "Connection error."
      const reason = causes(err.cause);
      return new LlmError(
        `the connection to the model endpoint failed (model ${model}, ${attempts} attempt${attempts === 1 ? '' : 's'})${reason}`,
        { retryable: true, attempts, cause: err },
      );
    }
    if (err instanceof OpenAI.APIError) {
      const status = err.status;
      const retryable = status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
      const tries = retryable ? attempts : 1;
      return new LlmError(
        `the model endpoint failed with HTTP ${status ?? '?'}${retryable ? ` after ${tries} attempt${tries === 1 ? '' : 's'}` : ''} (model ${model}): ${err.message}`,
        { ...(status !== undefined ? { status } : {}), retryable, attempts: tries, cause: err },
      );
    }
    return new LlmError(
      `the model request failed (model ${model}): ${err instanceof Error ? err.message : String(err)}`,
      { retryable: false, attempts: 1, cause: err },
    );
  }
}
