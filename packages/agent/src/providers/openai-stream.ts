import type OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { ModelDelta } from '../provider.js';

/** A stream that sent nothing for the provider's timeout. */
export class StreamStalledError extends Error {
  override readonly name = 'StreamStalledError';
}

/**
 * One streamed chat completion (`stream: true`, usage asked for in the last chunk), put back
 * together into the completion the non-streamed call returns: the text, each function call by
 * its index (id and name from its first chunk, arguments joined), the usage. Deltas go to
 * `onDelta` as they come. The SDK's timeout stops at the headers; an idle timer bounds the
 * body instead, so a stream that stalls half-way fails like a request that timed out.
 */
export async function streamed(
  client: OpenAI,
  body: ChatCompletionCreateParamsNonStreaming,
  signal: AbortSignal,
  idleMs: number,
  onDelta: (delta: ModelDelta) => void,
): Promise<OpenAI.Chat.Completions.ChatCompletion> {
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new StreamStalledError('stalled')), idleMs);
  };
  const both = AbortSignal.any([signal, idle.signal]);
  let text = '';
  const calls = new Map<number, { id: string; name: string; arguments: string }>();
  let usage: OpenAI.Completions.CompletionUsage | undefined;
  let id = '';
  let created = 0;
  let finish: OpenAI.Chat.Completions.ChatCompletion.Choice['finish_reason'] = 'stop';
  try {
    arm();
    const stream = await client.chat.completions.create(
      { ...body, stream: true, stream_options: { include_usage: true } },
      { signal: both },
    );
    for await (const chunk of stream) {
      arm();
      id ||= chunk.id;
      created ||= chunk.created;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.finish_reason) finish = choice.finish_reason;
      const delta = choice.delta;
      if (delta.content) {
        text += delta.content;
        onDelta({ part: 'text', chunk: delta.content });
      }
      for (const call of delta.tool_calls ?? []) {
        const entry = calls.get(call.index) ?? { id: '', name: '', arguments: '' };
        if (call.id) entry.id = call.id;
        if (call.function?.name) entry.name += call.function.name;
        if (call.function?.arguments) {
          entry.arguments += call.function.arguments;
          onDelta({ part: 'tool_call', chunk: call.function.arguments });
        }
        calls.set(call.index, entry);
      }
    }
    // The SDK's iterator ends quietly when its signal aborts: a cut answer must not pass as whole.
    if (both.aborted) throw both.reason;
  } catch (err) {
    if (idle.signal.aborted && !signal.aborted) throw idle.signal.reason;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const toolCalls = [...calls.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, c]) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
  return {
    id,
    object: 'chat.completion',
    created,
    model: body.model,
    choices: [
      {
        index: 0,
        finish_reason: finish,
        logprobs: null,
        message: {
          role: 'assistant',
          content: text,
          refusal: null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
      },
    ],
    ...(usage ? { usage } : {}),
  };
}
