/**
 * LLM_STREAM: the openai provider against a real HTTP server on 127.0.0.1 that answers
 * chat-completions with `stream: true` the way OpenAI does — `text/event-stream`, one
 * `chat.completion.chunk` per `data:` line, usage in a last chunk with no choices, `data: [DONE]`.
 */
import type http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '@research/contracts';
import { LlmError } from '../errors.js';
import { runAgent } from '../loop.js';
import { initialState, type ToolCallFormat } from '../state.js';
import { LoopbackEndpoint } from '../testing/endpoint.js';
import { TempDirStepRunner } from '../testing/temp-dir-step-runner.js';
import { OpenAIProvider } from './openai.js';

/** One scripted answer: its text and native calls, cut into small pieces as a model streams them. */
interface Answer {
  content?: string;
  toolCalls?: { id: string; name: string; arguments: string }[];
  /** Stop sending (headers and some chunks sent, the connection left open). */
  stall?: boolean;
}

const usage = { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 };

function pieces(text: string, size = 3): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function chunk(delta: Record<string, unknown>, finish: string | null = null): Record<string, unknown> {
  return {
    id: 'chatcmpl-stream',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'test-model',
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

function chunksOf(answer: Answer): Record<string, unknown>[] {
  const out = [chunk({ role: 'assistant', content: '' })];
  for (const p of pieces(answer.content ?? '')) out.push(chunk({ content: p }));
  (answer.toolCalls ?? []).forEach((c, index) => {
    out.push(chunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }));
    for (const p of pieces(c.arguments, 5)) out.push(chunk({ tool_calls: [{ index, function: { arguments: p } }] }));
  });
  out.push(chunk({}, answer.toolCalls ? 'tool_calls' : 'stop'));
  out.push({ ...chunk({}), choices: [], usage });
  return out;
}

/** Answers every request from the script: streamed when asked (`stream: true`), whole otherwise. */
class StreamingEndpoint extends LoopbackEndpoint {
  readonly answers: Answer[] = [];
  readonly streamed: boolean[] = [];
  #next = 0;
  protected answer(_req: http.IncomingMessage, res: http.ServerResponse, raw: string): void {
    const body = JSON.parse(raw || '{}') as { stream?: boolean };
    this.streamed.push(body.stream === true);
    const answer = this.answers[this.#next++ % this.answers.length] ?? {};
    if (!body.stream) {
      const message: Record<string, unknown> = { role: 'assistant', content: answer.content ?? null };
      if (answer.toolCalls)
        message.tool_calls = answer.toolCalls.map((c) => ({
          id: c.id,
          type: 'function',
          function: { name: c.name, arguments: c.arguments },
        }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-whole',
          object: 'chat.completion',
          created: 1_700_000_000,
          model: 'test-model',
          choices: [{ index: 0, message, finish_reason: 'stop' }],
          usage,
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const all = chunksOf(answer);
    const sent = answer.stall ? all.slice(0, 3) : all;
    for (const c of sent) res.write(`data: ${JSON.stringify(c)}\n\n`);
    if (!answer.stall) res.end('data: [DONE]\n\n');
  }
}

let endpoint: StreamingEndpoint;
let baseURL: string;
beforeEach(async () => {
  endpoint = new StreamingEndpoint();
  baseURL = await endpoint.start();
});
afterEach(async () => {
  await endpoint.stop();
});

async function run(format: ToolCallFormat, stream: boolean) {
  const steps = await TempDirStepRunner.create();
  const events: TaskEvent[] = [];
  try {
    const out = await runAgent({
      state: initialState({ prompt: 'Write a note' }, { format }),
      provider: new OpenAIProvider({ baseURL, model: 'test-model', maxRetries: 0, timeoutMs: 2_000, stream }),
      steps,
      format,
      maxSteps: 10,
      deadline: Date.now() + 30_000,
      signal: new AbortController().signal,
      onEvent: (e) => {
        events.push(e);
      },
    });
    return { out, events, note: await steps.read('note.md') };
  } finally {
    await steps.dispose();
  }
}

/** An outcome without its times. */
const same = (out: Awaited<ReturnType<typeof runAgent>>) => ({
  reason: out.reason,
  summary: out.summary,
  usage: out.usage,
  messages: out.state.messages,
});

/** The events without their times and without the deltas: what a non-streamed run shows. */
const settled = (events: TaskEvent[]) =>
  events
    .filter((e) => e.type !== 'model_delta')
    .map(({ at: _at, ...rest }) => ('durationMs' in rest ? { ...rest, durationMs: 0 } : rest));
const deltas = (events: TaskEvent[], turn: number, part: string) =>
  events
    .filter((e): e is Extract<TaskEvent, { type: 'model_delta' }> => e.type === 'model_delta')
    .filter((e) => e.turn === turn && e.part === part)
    .map((e) => e.chunk)
    .join('');

describe('LLM_STREAM: the openai provider streams', () => {
  it('xml format: the streamed answer is the same answer, and its text comes as a few model_delta events first', async () => {
    const first =
      'Writing the note now, in one go.\n<daytona-execute>\naction="create-file"\nfilePath="note.md"\ncontent="# Note\nhello from a stream"\n</daytona-execute>';
    endpoint.answers.push({ content: first }, { content: 'The note is in note.md.' });
    const whole = await run('xml', false);
    const streamed = await run('xml', true);
    expect(endpoint.streamed).toEqual([false, false, true, true]);

    expect(same(streamed.out)).toEqual(same(whole.out));
    expect(streamed.note).toBe('# Note\nhello from a stream');
    expect(settled(streamed.events)).toEqual(settled(whole.events));
    expect(whole.events.some((e) => e.type === 'model_delta')).toBe(false);

    expect(deltas(streamed.events, 1, 'text')).toBe(first);
    expect(deltas(streamed.events, 2, 'text')).toBe('The note is in note.md.');
    // ~50 pieces of 3 characters, coalesced.
    const turnOne = streamed.events.filter((e) => e.type === 'model_delta' && e.turn === 1);
    expect(turnOne.length).toBeLessThan(pieces(first).length / 4);
    // Every delta of a turn comes before the turn's whole answer.
    const lastDelta = streamed.events.findLastIndex((e) => e.type === 'model_delta' && e.turn === 1);
    const message = streamed.events.findIndex((e) => e.type === 'assistant_message');
    expect(lastDelta).toBeLessThan(message);
  });

  it('native format: function call arguments streamed in pieces are put back together', async () => {
    const args = JSON.stringify({ action: 'create-file', filePath: 'note.md', content: 'native and streamed' });
    endpoint.answers.push(
      { toolCalls: [{ id: 'call_1', name: 'daytona-execute', arguments: args }] },
      { content: 'Done.' },
    );
    const whole = await run('native', false);
    const streamed = await run('native', true);
    expect(same(streamed.out)).toEqual(same(whole.out));
    expect(streamed.note).toBe('native and streamed');
    expect(settled(streamed.events)).toEqual(settled(whole.events));
    expect(deltas(streamed.events, 1, 'tool_call')).toBe(args);
    expect(streamed.out.usage).toEqual({ promptTokens: 200, completionTokens: 40 });
  });

  it('a stream that goes quiet half-way is an LlmError, not a hang', async () => {
    endpoint.answers.push({ content: 'This answer never ends because the server stops sending', stall: true });
    await expect(run('xml', true)).rejects.toBeInstanceOf(LlmError);
  });
});
