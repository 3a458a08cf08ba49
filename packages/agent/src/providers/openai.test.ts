/**
 * The openai provider end to end against a real HTTP server on 127.0.0.1 that speaks the
 * chat-completions protocol (node:http, no mocks of the SDK or of fetch).
 */
import type http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentAbortError, LlmError } from '../errors.js';
import { runAgent } from '../loop.js';
import { initialState, type ToolCallFormat } from '../state.js';
import { LoopbackEndpoint } from '../testing/endpoint.js';
import { TempDirStepRunner } from '../testing/temp-dir-step-runner.js';
import { createProvider } from './create.js';
import { OfflineModel } from './offline.js';
import { BufferedResponse, OpenAIProvider } from './openai.js';

/** `hang`: never answers; `stallBody`: sends the headers and half the body, then nothing; `cutBody`: the same, then closes the connection. */
type Reply = {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  hang?: boolean;
  stallBody?: boolean;
  cutBody?: boolean;
};
type Seen = {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: {
    model: string;
    messages: Record<string, unknown>[];
    tools?: { type: string; function: { name: string; parameters: Record<string, unknown> } }[];
  };
};

/** A chat-completions endpoint that answers from a script and records every request. */
class FakeEndpoint extends LoopbackEndpoint {
  readonly seen: Seen[] = [];
  readonly replies: Reply[] = [];
  protected answer(req: http.IncomingMessage, res: http.ServerResponse, raw: string): void {
    this.seen.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(raw || '{}') as Seen['body'] });
    const reply = this.replies.length > 1 ? this.replies.shift() : this.replies[0];
    if (!reply || reply.hang) return; // never answers; the client's timeout or abort ends it
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
    const json = JSON.stringify(reply.body ?? {});
    if (reply.stallBody || reply.cutBody) {
      res.write(json.slice(0, json.length / 2));
      if (reply.cutBody) setTimeout(() => res.destroy(), 10);
    } else res.end(json);
  }
}

function completion(message: Record<string, unknown>, usage = { prompt_tokens: 100, completion_tokens: 20 }): Reply {
  return {
    body: {
      id: 'chatcmpl-test',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'test-model',
      choices: [{ index: 0, message: { role: 'assistant', content: null, ...message }, finish_reason: 'stop' }],
      usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
    },
  };
}

const error = (status: number, message: string, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'retry-after-ms': '5', ...headers },
  body: { error: { message, type: 'server_error', code: null } },
});

let endpoint: FakeEndpoint;
let baseURL: string;
let steps: TempDirStepRunner;
beforeEach(async () => {
  endpoint = new FakeEndpoint();
  baseURL = await endpoint.start();
  steps = await TempDirStepRunner.create();
});
afterEach(async () => {
  await endpoint.stop();
  await steps.dispose();
});

function provider(over: { maxRetries?: number; timeoutMs?: number } = {}): OpenAIProvider {
  return new OpenAIProvider({
    baseURL,
    apiKey: 'sk-test',
    model: 'test-model',
    maxRetries: over.maxRetries ?? 2,
    timeoutMs: over.timeoutMs ?? 5_000,
  });
}

/** One model request saying "hi" straight to `p`: its answer, or what it threw. */
function sayHi(p: OpenAIProvider, signal = new AbortController().signal): Promise<unknown> {
  return p
    .complete({ messages: [{ role: 'user', content: 'hi' }], format: 'xml', tools: [] }, signal)
    .catch((e: unknown) => e);
}

/** A signal aborted `ms` from now, as a caller that gives up. */
function abortedIn(ms: number): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), ms);
  return controller.signal;
}

function run(format: ToolCallFormat, p = provider(), signal = new AbortController().signal) {
  return runAgent({
    state: initialState({ prompt: 'Write a note' }, { format }),
    provider: p,
    steps,
    format,
    maxSteps: 10,
    deadline: Date.now() + 30_000,
    signal,
    model: 'task-model',
  });
}

describe('OpenAIProvider against a chat-completions server on loopback', () => {
  it('xml format: text with a <daytona-execute> block runs, and the result goes back as a user message', async () => {
    endpoint.replies.push(
      completion({
        content:
          'Writing it.\n<daytona-execute>\naction="create-file"\nfilePath="note.md"\ncontent="# Note\nhello"\n</daytona-execute>',
      }),
      completion({ content: 'The note is in note.md.' }, { prompt_tokens: 150, completion_tokens: 8 }),
    );
    const out = await run('xml');
    expect(out.reason).toBe('answer');
    expect(out.summary).toBe('The note is in note.md.');
    expect(await steps.read('note.md')).toBe('# Note\nhello');
    expect(out.usage).toEqual({ promptTokens: 250, completionTokens: 28 });

    expect(endpoint.seen).toHaveLength(2);
    const [first, second] = endpoint.seen;
    expect(first?.path).toBe('/v1/chat/completions');
    expect(first?.headers.authorization).toBe('Bearer sk-test');
    expect(first?.body.model).toBe('task-model');
    expect(first?.body.tools).toBeUndefined();
    expect(first?.body.messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(String(first?.body.messages[0]?.content)).toContain('<daytona-execute>');
    expect(second?.body.messages.at(-1)).toEqual({
      role: 'user',
      content: '<daytona-result step="0" action="create-file">\ncreated note.md (12 bytes)\n</daytona-result>',
    });
  });

  it('native format: sends the tool schema, runs tool_calls, answers with tool messages', async () => {
    endpoint.replies.push(
      completion({
        tool_calls: [
          {
            id: 'call_abc',
            type: 'function',
            function: {
              name: 'daytona-execute',
              arguments: JSON.stringify({ action: 'create-file', filePath: 'n.md', content: 'x' }),
            },
          },
          {
            id: 'call_def',
            type: 'function',
            function: { name: 'daytona-execute', arguments: JSON.stringify({ action: 'list-files', path: null }) },
          },
        ],
      }),
      completion({ content: 'Done, see n.md.' }),
    );
    const out = await run('native');
    expect(out.reason).toBe('answer');
    expect(steps.calls.map((c) => [c.step, c.call.id, c.call.args])).toEqual([
      [0, 'call_abc', { action: 'create-file', filePath: 'n.md', content: 'x' }],
      [1, 'call_def', { action: 'list-files' }],
    ]);

    const [first, second] = endpoint.seen;
    expect(first?.body.tools).toHaveLength(1);
    expect(first?.body.tools?.[0]?.function.name).toBe('daytona-execute');
    expect(first?.body.tools?.[0]?.function.parameters).toMatchObject({ type: 'object', required: ['action'] });
    const tail = second?.body.messages.slice(-3);
    expect(tail?.[0]).toMatchObject({ role: 'assistant', tool_calls: [{ id: 'call_abc' }, { id: 'call_def' }] });
    expect(tail?.[1]).toMatchObject({ role: 'tool', tool_call_id: 'call_abc' });
    expect(tail?.[2]).toMatchObject({
      role: 'tool',
      tool_call_id: 'call_def',
      content: expect.stringContaining('n.md'),
    });
    expect(out.usage).toEqual({ promptTokens: 200, completionTokens: 40 });
  });

  it('retries a 429 (the SDK honours retry-after) and then succeeds', async () => {
    endpoint.replies.push(error(429, 'Rate limit reached'), completion({ content: 'fine now' }));
    const out = await run('xml');
    expect(out.reason).toBe('answer');
    expect(out.summary).toBe('fine now');
    expect(endpoint.seen).toHaveLength(2);
  });

  it('gives up on a 500 after its retries with a clear LlmError', async () => {
    endpoint.replies.push(error(500, 'upstream exploded'));
    const err = await run('xml', provider({ maxRetries: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmError);
    const llm = err as LlmError;
    expect(llm.status).toBe(500);
    expect(llm.retryable).toBe(true);
    expect(llm.attempts).toBe(3);
    expect(llm.message).toMatch(
      /the model endpoint failed with HTTP 500 after 3 attempts \(model task-model\): .*upstream exploded/,
    );
    expect(endpoint.seen).toHaveLength(3);
  });

  it('does not retry a 401 and says so', async () => {
    endpoint.replies.push({ status: 401, body: { error: { message: 'bad key', type: 'invalid_request_error' } } });
    const err = (await run('xml').catch((e: unknown) => e)) as LlmError;
    expect(err).toBeInstanceOf(LlmError);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/HTTP 401 \(model task-model\)/);
    expect(endpoint.seen).toHaveLength(1);
  });

  it('reports a request that times out', async () => {
    endpoint.replies.push({ hang: true });
    const err = (await run('xml', provider({ maxRetries: 0, timeoutMs: 200 })).catch((e: unknown) => e)) as LlmError;
    expect(err).toBeInstanceOf(LlmError);
    expect(err.message).toMatch(/did not answer in time \(model task-model, 1 attempt of at most 200 ms each\)/);
  });

  it('bounds the body too: headers then half a body then nothing is a timeout, retried by the SDK', async () => {
    endpoint.replies.push({ ...completion({ content: 'this answer never ends' }), stallBody: true });
    const err = (await run('xml', provider({ maxRetries: 1, timeoutMs: 200 })).catch((e: unknown) => e)) as LlmError;
    expect(err).toBeInstanceOf(LlmError);
    expect(err.message).toMatch(/did not answer in time \(model task-model, 2 attempts of at most 200 ms each\)/);
    expect(err.retryable).toBe(true);
    expect(endpoint.seen).toHaveLength(2);
  });

  it('a body cut off by a closed connection is a connection error, retried by the SDK', async () => {
    endpoint.replies.push({ ...completion({ content: 'this answer is cut' }), cutBody: true });
    const err = (await run('xml', provider({ maxRetries: 1 })).catch((e: unknown) => e)) as LlmError;
    expect(err).toBeInstanceOf(LlmError);
    expect(err.message).toMatch(
      /^the connection to the model endpoint failed \(model task-model, 2 attempts\): other side closed/,
    );
    expect(err.retryable).toBe(true);
    expect(endpoint.seen).toHaveLength(2);
  });

  it('names the cause when the endpoint cannot be reached', async () => {
    const closed = new FakeEndpoint();
    const url = await closed.start();
    await closed.stop();
    const p = new OpenAIProvider({ baseURL: url, model: 'm', maxRetries: 0, timeoutMs: 1_000 });
    const err = (await sayHi(p)) as LlmError;
    expect(err).toBeInstanceOf(LlmError);
    expect(err.message).toMatch(
      /^the connection to the model endpoint failed \(model m, 1 attempt\): connect ECONNREFUSED 127\.0\.0\.1:\d+/,
    );
  });

  it('a body that stalls then the caller aborts is a cancellation, not an LlmError', async () => {
    endpoint.replies.push({ ...completion({ content: 'this answer never ends' }), stallBody: true });
    const err = await sayHi(provider(), abortedIn(100));
    expect(err).toBeInstanceOf(AgentAbortError);
  });

  it('cancels an in-flight request through the signal', async () => {
    endpoint.replies.push({ hang: true });
    const out = await run('xml', provider(), abortedIn(50));
    expect(out.reason).toBe('cancelled');
  });

  it('complete() turns an abort into AgentAbortError, not an LlmError', async () => {
    endpoint.replies.push({ hang: true });
    const err = await sayHi(provider(), abortedIn(50));
    expect(err).toBeInstanceOf(AgentAbortError);
  });
});

describe('createProvider', () => {
  const env = {
    LLM_MODEL: 'm',
    LLM_TIMEOUT_MS: 1_000,
    LLM_MAX_RETRIES: 0,
    LLM_BASE_URL: undefined,
    LLM_API_KEY: undefined,
  };
  it('selects the offline model or the openai provider', async () => {
    expect(createProvider({ ...env, LLM_PROVIDER: 'offline' })).toBeInstanceOf(OfflineModel);
    const p = createProvider({ ...env, LLM_PROVIDER: 'openai', LLM_BASE_URL: baseURL });
    expect(p).toBeInstanceOf(OpenAIProvider);
    endpoint.replies.push(completion({ content: 'hello' }));
    const turn = await p.complete(
      { messages: [{ role: 'user', content: 'hi' }], format: 'xml', tools: [] },
      new AbortController().signal,
    );
    expect(turn).toEqual({ text: 'hello', usage: { promptTokens: 100, completionTokens: 20 } });
    expect(endpoint.seen[0]?.body.model).toBe('m');
  });
});

describe('BufferedResponse', () => {
  it('answers like a Response read once: status, headers, ok, then the body as text, JSON or bytes', async () => {
    const bytes = Buffer.from(JSON.stringify({ answer: 'ok', n: 1 }));
    const headers = new Headers({ 'content-type': 'application/json', 'x-request-id': 'req-1' });
    const r = new BufferedResponse(bytes, { status: 200, headers });
    expect(r).toBeInstanceOf(Response);
    expect([r.status, r.ok, r.headers.get('x-request-id')]).toEqual([200, true, 'req-1']);
    expect(await r.json()).toEqual({ answer: 'ok', n: 1 });
    await expect(r.text()).rejects.toThrow(TypeError);

    const failed = new BufferedResponse(Buffer.from('upstream exploded'), { status: 502 });
    expect(failed.ok).toBe(false);
    expect(await failed.text()).toBe('upstream exploded');

    const raw = new BufferedResponse(Buffer.from([1, 2, 3]), { status: 200 });
    expect([...new Uint8Array(await raw.arrayBuffer())]).toEqual([1, 2, 3]);
  });
});
