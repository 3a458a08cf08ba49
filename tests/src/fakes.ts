import http from 'node:http';
import type net from 'node:net';
import type { StepOutcome } from '@research/contracts';
import { System, raw, type StreamedEvent } from '@research/testing';

/** A System that records the status of every API response it receives (to prove "never a 5xx"). */
export class TrackedSystem extends System {
  readonly statuses: { path: string; status: number }[] = [];

  override async request(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await super.request(path, init);
    this.statuses.push({ path: path.slice(0, 200), status: res.status });
    return res;
  }

  /**
   * GET with the path sent exactly as written: `fetch` would resolve `..` segments before
   * sending, which is not what an attacker's client does.
   */
  async rawGet(path: string): Promise<{ status: number; body: string }> {
    const res = await raw(this.apiPort, 'GET', path, { authorization: `Bearer ${this.apiKey}` });
    this.statuses.push({ path: path.slice(0, 200), status: res.status });
    return { status: res.status, body: res.body };
  }

  serverErrors(): { path: string; status: number }[] {
    return this.statuses.filter((s) => s.status >= 500);
  }
}

export type TaskEvents = StreamedEvent[];

/** The outcomes of a task's steps, in step order, from its event stream. */
export function stepOutcomes(events: TaskEvents): StepOutcome[] {
  return events
    .filter((e) => e.type === 'tool_result')
    .map((e) => e.data as { step: number; outcome: StepOutcome })
    .sort((a, b) => a.step - b.step)
    .map((d) => d.outcome);
}

export function toolErrors(events: TaskEvents): string[] {
  return events.filter((e) => e.type === 'tool_error').map((e) => (e.data as { message: string }).message);
}

/** A command's result, or a readable failure when the step was refused. */
export function commandResult(outcome: StepOutcome | undefined): {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  truncated: boolean;
} {
  if (!outcome) throw new Error('no such step');
  if (!outcome.ok) throw new Error(`step was refused: ${outcome.error.code}: ${outcome.error.message}`);
  if (outcome.result.action !== 'execute-command') throw new Error(`not a command result: ${outcome.result.action}`);
  return outcome.result;
}

export function refusal(outcome: StepOutcome | undefined): string {
  if (!outcome) throw new Error('no such step');
  if (outcome.ok) throw new Error(`step was not refused: ${JSON.stringify(outcome.result).slice(0, 300)}`);
  return outcome.error.code;
}

// --- a chat-completions endpoint on loopback -------------------------------------------------

export interface ChatRequest {
  model: string;
  messages: { role: string; content: string | null }[];
}

/** What the fake endpoint does with one request: answer with text, fail with a status, never answer, or stop mid-body. */
export type ChatReply = { text: string } | { status: number; body?: unknown } | 'hang' | 'stall-body';

/**
 * An OpenAI-compatible `POST /v1/chat/completions` on 127.0.0.1, scripted per request. Counts
 * requests so tests can assert bounded retries; `close()` also drops hanging requests.
 */
export class FakeLlm {
  requests = 0;
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly script: (req: ChatRequest, n: number) => ChatReply) {
    this.server = http.createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (raw += d));
      req.on('end', () => {
        if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
          return;
        }
        const n = this.requests++;
        const reply = this.script(JSON.parse(raw) as ChatRequest, n);
        if (reply === 'hang') return;
        if (reply === 'stall-body') {
          // Headers and the start of a body, then nothing: the response never ends.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(
            '{"id":"chatcmpl-stall","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"I am thin',
          );
          return;
        }
        if ('status' in reply) {
          res
            .writeHead(reply.status, { 'content-type': 'application/json' })
            .end(
              JSON.stringify(reply.body ?? { error: { message: `scripted ${reply.status}`, type: 'server_error' } }),
            );
          return;
        }
        const completion = {
          id: `chatcmpl-${n}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: 'fake',
          choices: [{ index: 0, message: { role: 'assistant', content: reply.text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion));
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  /** Worker environment that points the openai provider at this server. */
  workerEnv(extra: Record<string, string> = {}): Record<string, string> {
    return { LLM_PROVIDER: 'openai', LLM_BASE_URL: this.baseUrl, LLM_API_KEY: 'x', LLM_MODEL: 'fake', ...extra };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The task's prompt and how many turns the model already took, from a chat request. */
export function turnOf(req: ChatRequest): { prompt: string; turn: number } {
  const prompt = req.messages.find((m) => m.role === 'user')?.content ?? '';
  return { prompt, turn: req.messages.filter((m) => m.role === 'assistant').length };
}
