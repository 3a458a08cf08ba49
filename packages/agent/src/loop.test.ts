import { describe, expect, it } from 'vitest';
import type { StepOutcome, ToolCall } from '@research/contracts';
import { LlmError } from './errors.js';
import { runAgent, type StepRunner } from './loop.js';
import type { ModelTurn } from './provider.js';
import { AgentState } from './state.js';
import { runOptions, useTempRunners } from './testing/loop.js';
import { ScriptedModel, untilAborted } from './testing/temp-dir-step-runner.js';
import { renderToolCall } from './xml.js';

const tempRunner = useTempRunners();

const xmlTurn = (...blocks: Parameters<typeof renderToolCall>[0][]): ModelTurn => ({
  text: `Working.\n${blocks.map(renderToolCall).join('\n')}`,
  usage: { promptTokens: 10, completionTokens: 5 },
});
const answer = (text: string): ModelTurn => ({ text, usage: { promptTokens: 20, completionTokens: 3 } });

describe('runAgent', () => {
  it('runs xml calls in order with global step indices and returns results as user messages', async () => {
    const steps = await tempRunner();
    const model = new ScriptedModel([
      xmlTurn({ action: 'create-file', filePath: 'a.md', content: 'A' }, { action: 'read-file', filePath: 'a.md' }),
      xmlTurn({ action: 'list-files' }),
      answer('Done: a.md written.'),
    ]);
    const opts = runOptions({ provider: model, steps });
    const out = await runAgent(opts);

    expect(out.reason).toBe('answer');
    expect(out.summary).toBe('Done: a.md written.');
    expect(steps.steps()).toEqual([0, 1, 2]);
    expect(steps.calls.map((c) => c.call.id)).toEqual(['call_0', 'call_1', 'call_2']);
    expect(await steps.read('a.md')).toBe('A');
    expect(out.usage).toEqual({ promptTokens: 40, completionTokens: 13 });
    expect(out.state.turns).toBe(3);
    // The second request carries both results of the first turn.
    const second = model.requests[1]?.messages.slice(-2);
    expect(second?.[0]).toMatchObject({
      role: 'user',
      content: expect.stringMatching(/^<daytona-result step="0" action="create-file">\ncreated a.md \(1 bytes\)/),
    });
    expect(second?.[1]).toMatchObject({
      role: 'user',
      content: expect.stringContaining('<daytona-result step="1" action="read-file">\na.md (1 bytes):\nA'),
    });
    expect(opts.events.map((e) => e.type)).toEqual([
      'turn',
      'assistant_message',
      'tool_call',
      'tool_result',
      'tool_call',
      'tool_result',
      'turn',
      'assistant_message',
      'tool_call',
      'tool_result',
      'turn',
      'assistant_message',
      'finished',
    ]);
    expect(opts.events.at(-1)).toMatchObject({ type: 'finished', reason: 'answer', summary: 'Done: a.md written.' });
    // A checkpoint after each model turn and each step, and one at the end.
    expect(opts.checkpoints).toHaveLength(2 + 3 + 1);
    expect(opts.checkpoints.at(-1)?.finished?.reason).toBe('answer');
  });

  it('native format: results go back as tool messages answering each tool_call_id', async () => {
    const steps = await tempRunner();
    const model = new ScriptedModel([
      {
        text: '',
        toolCalls: [
          {
            id: 'tc_a',
            name: 'daytona-execute',
            arguments: JSON.stringify({ action: 'create-file', filePath: 'n.txt', content: 'native' }),
          },
        ],
      },
      {
        text: '',
        toolCalls: [
          {
            id: 'tc_b',
            name: 'daytona-execute',
            arguments: JSON.stringify({ action: 'read-file', filePath: 'n.txt', cwd: null }),
          },
        ],
      },
      answer('finished'),
    ]);
    const opts = runOptions({ provider: model, steps, format: 'native' });
    const out = await runAgent(opts);
    expect(out.reason).toBe('answer');
    expect(steps.calls.map((c) => [c.step, c.call.id, c.call.args.action])).toEqual([
      [0, 'tc_a', 'create-file'],
      [1, 'tc_b', 'read-file'],
    ]);
    expect(model.requests[0]?.tools.map((t) => t.function.name)).toEqual(['daytona-execute']);
    const last = model.requests[2]?.messages ?? [];
    expect(last.at(-2)).toMatchObject({ role: 'assistant', toolCalls: [{ id: 'tc_b' }] });
    expect(last.at(-1)).toMatchObject({
      role: 'tool',
      toolCallId: 'tc_b',
      content: expect.stringContaining('n.txt (6 bytes):\nnative'),
    });
  });

  it('turns a malformed block into an error message and a tool_error event, then carries on', async () => {
    const steps = await tempRunner();
    const model = new ScriptedModel([
      { text: '<daytona-execute>\naction="create-file"\nfilePath="x.md"\n</daytona-execute>' },
      xmlTurn({ action: 'create-file', filePath: 'x.md', content: 'fixed' }),
      answer('ok'),
    ]);
    const opts = runOptions({ provider: model, steps });
    const out = await runAgent(opts);
    expect(out.reason).toBe('answer');
    expect(opts.events.filter((e) => e.type === 'tool_error')).toEqual([
      expect.objectContaining({ message: expect.stringContaining('missing parameter "content"') }),
    ]);
    expect(model.requests[1]?.messages.at(-1)).toMatchObject({
      role: 'user',
      content: expect.stringMatching(/^<daytona-error>[\s\S]*missing parameter "content"/),
    });
    expect(steps.steps()).toEqual([0]);
  });

  it('native format: bad JSON and unknown tools are answered with an error tool message', async () => {
    const steps = await tempRunner();
    const model = new ScriptedModel([
      {
        text: '',
        toolCalls: [
          { id: 'a', name: 'daytona-execute', arguments: '{"action":' },
          { id: 'b', name: 'shell', arguments: '{}' },
        ],
      },
      answer('ok'),
    ]);
    const opts = runOptions({ provider: model, steps, format: 'native' });
    await runAgent(opts);
    expect(opts.events.filter((e) => e.type === 'tool_error')).toHaveLength(2);
    const msgs = model.requests[1]?.messages ?? [];
    expect(msgs.filter((m) => m.role === 'tool').map((m) => m.role === 'tool' && [m.toolCallId, m.content])).toEqual([
      ['a', expect.stringContaining('not valid JSON')],
      ['b', expect.stringContaining('unknown tool "shell"')],
    ]);
  });

  it('translates a deprecated tool and runs it as daytona-execute in the sandbox runner', async () => {
    const steps = await tempRunner();
    const warnings: string[] = [];
    const noop = (): void => {};
    const model = new ScriptedModel([
      { text: '<file-creation>\nfilePath="legacy.md"\ncontent="old"\n</file-creation>' },
      answer('ok'),
    ]);
    await runAgent(
      runOptions({
        provider: model,
        steps,
        logger: { debug: noop, info: noop, error: noop, warn: (_o, m) => void warnings.push(m ?? '') },
      }),
    );
    expect(steps.calls[0]?.call).toEqual({
      id: 'call_0',
      tool: 'daytona-execute',
      args: { action: 'create-file', filePath: 'legacy.md', content: 'old' },
    });
    expect(warnings).toEqual([expect.stringContaining('deprecated tool "file-creation"')]);
  });

  it('truncates long outputs for the context and says so', async () => {
    const big = `${'x'.repeat(5_000)}TAIL`;
    const steps = await tempRunner({
      onExecute: () => ({ exitCode: 0, stdout: big, stderr: '', timedOut: false, truncated: false, durationMs: 1 }),
    });
    const model = new ScriptedModel([xmlTurn({ action: 'execute-command', command: 'cat big' }), answer('ok')]);
    const opts = runOptions({ provider: model, steps, maxToolOutputChars: 1_000 });
    await runAgent(opts);
    const result = model.requests[1]?.messages.at(-1)?.content ?? '';
    expect(result.length).toBeLessThan(1_300);
    expect(result).toMatch(/characters omitted here: output truncated for the context/);
    expect(result).toContain('TAIL');
    // The event keeps the whole outcome.
    const ev = opts.events.find((e) => e.type === 'tool_result');
    expect(
      ev?.type === 'tool_result' &&
        ev.outcome.ok &&
        ev.outcome.result.action === 'execute-command' &&
        ev.outcome.result.stdout,
    ).toBe(big);
  });

  it('stops at maxSteps without running more steps', async () => {
    const steps = await tempRunner();
    const model = new ScriptedModel([xmlTurn({ action: 'list-files' }, { action: 'list-files' })]);
    const opts = runOptions({ provider: model, steps, maxSteps: 3 });
    const out = await runAgent(opts);
    expect(out.reason).toBe('max_steps');
    expect(steps.steps()).toEqual([0, 1, 2]);
    expect(out.summary).toMatch(/step budget of 3/);
    expect(opts.events.at(-1)).toMatchObject({ type: 'finished', reason: 'max_steps' });
  });

  it('stops a model that only ever writes malformed blocks after maxTurns', async () => {
    const steps = await tempRunner();
    const model = new ScriptedModel([{ text: '<daytona-execute>\naction="nope"\n</daytona-execute>' }]);
    const out = await runAgent(runOptions({ provider: model, steps, maxSteps: 5, maxTurns: 4 }));
    expect(out.reason).toBe('max_steps');
    expect(model.requests).toHaveLength(4);
    expect(steps.calls).toEqual([]);
  });

  it('times out at the deadline, aborting the running step', async () => {
    let stepSignal: AbortSignal | undefined;
    const steps: StepRunner = {
      run: (_c, _i, signal) => {
        stepSignal = signal;
        return untilAborted(signal);
      },
    };
    const model = new ScriptedModel([xmlTurn({ action: 'execute-command', command: 'sleep 100' })]);
    const opts = runOptions({ provider: model, steps, deadline: Date.now() + 150 });
    const out = await runAgent(opts);
    expect(out.reason).toBe('timeout');
    expect(stepSignal?.aborted).toBe(true);
    expect(out.summary).toMatch(/time limit/);
    expect(opts.events.at(-1)).toMatchObject({ type: 'finished', reason: 'timeout' });
  });

  it('does not ask the model when the deadline has already passed', async () => {
    const model = new ScriptedModel([answer('never')]);
    const out = await runAgent(runOptions({ provider: model, steps: await tempRunner(), deadline: Date.now() - 1 }));
    expect(out.reason).toBe('timeout');
    expect(model.requests).toEqual([]);
  });

  it('cancels through the signal, aborting the in-flight model request', async () => {
    const controller = new AbortController();
    const model = new ScriptedModel([(_n, signal) => untilAborted(signal)]);
    const run = runAgent(runOptions({ provider: model, steps: await tempRunner(), signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    const out = await run;
    expect(out.reason).toBe('cancelled');
    expect(model.signals[0]?.aborted).toBe(true);
  });

  it('cancels through the signal, aborting the in-flight step', async () => {
    const controller = new AbortController();
    const seen: AbortSignal[] = [];
    const steps: StepRunner = {
      run: (_c, _i, signal) => {
        seen.push(signal);
        setTimeout(() => controller.abort(), 10);
        return untilAborted(signal);
      },
    };
    const model = new ScriptedModel([xmlTurn({ action: 'list-files' }), answer('never')]);
    const opts = runOptions({ provider: model, steps, signal: controller.signal });
    const out = await runAgent(opts);
    expect(out.reason).toBe('cancelled');
    expect(seen[0]?.aborted).toBe(true);
    expect(model.requests).toHaveLength(1);
    expect(out.state.pending).toHaveLength(1);
  });

  it('lets an infrastructure error of the StepRunner propagate', async () => {
    const steps: StepRunner = { run: () => Promise.reject(new Error('redis went away')) };
    const model = new ScriptedModel([xmlTurn({ action: 'list-files' })]);
    await expect(runAgent(runOptions({ provider: model, steps }))).rejects.toThrow('redis went away');
  });

  it('lets an LlmError propagate', async () => {
    const model = new ScriptedModel([
      () =>
        Promise.reject(
          new LlmError('the model endpoint failed with HTTP 500', { status: 500, retryable: true, attempts: 3 }),
        ),
    ]);
    await expect(runAgent(runOptions({ provider: model, steps: await tempRunner() }))).rejects.toBeInstanceOf(LlmError);
  });

  it('keeps a state that survives JSON and validates against the AgentState schema', async () => {
    const steps = await tempRunner();
    const model = new ScriptedModel([
      xmlTurn({ action: 'create-file', filePath: 'q.md', content: 'say "hi"\n' }),
      answer('ok'),
    ]);
    const opts = runOptions({ provider: model, steps });
    await runAgent(opts);
    for (const cp of opts.checkpoints) {
      expect(JSON.parse(JSON.stringify(cp))).toEqual(cp);
      expect(AgentState.parse(cp)).toEqual(cp);
    }
  });

  it('returns a finished state as it is', async () => {
    const model = new ScriptedModel([answer('done')]);
    const first = await runAgent(runOptions({ provider: model, steps: await tempRunner() }));
    const again = await runAgent(runOptions({ provider: model, steps: await tempRunner(), state: first.state }));
    expect(again.reason).toBe('answer');
    expect(model.requests).toHaveLength(1);
  });
  it('checkpointSteps: false writes the state after each turn and at the end only, and a resume from a turn replays its calls', async () => {
    const script = [
      xmlTurn({ action: 'create-file', filePath: 'a.md', content: 'A' }, { action: 'read-file', filePath: 'a.md' }),
      xmlTurn({ action: 'list-files' }),
      answer('done'),
    ];
    const steps = await tempRunner();
    const opts = runOptions({ provider: new ScriptedModel(script), steps, checkpointSteps: false });
    const out = await runAgent(opts);
    expect(out.reason).toBe('answer');
    expect(steps.steps()).toEqual([0, 1, 2]);
    // Two turns with calls, then the final one: no checkpoint between the steps of a turn.
    expect(opts.checkpoints.map((c) => [c.nextStep, c.pending.length])).toEqual([
      [2, 2],
      [3, 1],
      [3, 0],
    ]);
    // Resuming from the first turn's checkpoint runs both of its calls again (a step runner that
    // keeps records answers them from there), then carries on from the model's second turn.
    const first = JSON.parse(JSON.stringify(opts.checkpoints[0])) as AgentState;
    const again = await tempRunner();
    const model = new ScriptedModel(script.slice(1));
    const resumed = await runAgent(runOptions({ provider: model, steps: again, state: first, checkpointSteps: false }));
    expect(resumed.reason).toBe('answer');
    expect(again.steps()).toEqual([0, 1, 2]);
    expect(model.requests).toHaveLength(2);
    expect(resumed.state.messages).toEqual(out.state.messages);
  });
});

describe('runAgent: resume from a checkpoint', () => {
  /** Crashes the "worker" by throwing from onCheckpoint once the predicate matches. */
  class Crash extends Error {}
  const crashWhen = (pred: (s: AgentState) => boolean, store: AgentState[]) => (s: AgentState) => {
    store.push(s);
    if (pred(s)) throw new Crash('worker died');
  };

  it('runs the pending calls of the checkpointed turn without asking the model again', async () => {
    const steps = await tempRunner();
    const firstModel = new ScriptedModel([
      xmlTurn(
        { action: 'create-file', filePath: 'a', content: '1' },
        { action: 'create-file', filePath: 'b', content: '2' },
      ),
    ]);
    const saved: AgentState[] = [];
    await expect(
      runAgent(
        runOptions({ provider: firstModel, steps, onCheckpoint: crashWhen((s) => s.pending.length === 2, saved) }),
      ),
    ).rejects.toBeInstanceOf(Crash);
    expect(steps.calls).toEqual([]);

    const checkpoint = JSON.parse(JSON.stringify(saved.at(-1))) as AgentState;
    const secondModel = new ScriptedModel([answer('resumed and done')]);
    const resumedSteps = await tempRunner();
    const out = await runAgent(runOptions({ provider: secondModel, steps: resumedSteps, state: checkpoint }));
    expect(out.reason).toBe('answer');
    expect(resumedSteps.steps()).toEqual([0, 1]);
    // One request only: the final answer after the pending calls ran.
    expect(secondModel.requests).toHaveLength(1);
    expect(
      secondModel.requests[0]?.messages.filter((m) => m.role === 'user' && m.content.startsWith('<daytona-result')),
    ).toHaveLength(2);
  });

  it('never re-runs a finished step and keeps step indices global across turns', async () => {
    const script = [
      xmlTurn(
        { action: 'create-file', filePath: 'a', content: '1' },
        { action: 'create-file', filePath: 'b', content: '2' },
      ),
      xmlTurn({ action: 'list-files' }, { action: 'read-file', filePath: 'a' }),
      answer('all done'),
    ];
    const log: { step: number; call: ToolCall }[] = [];
    const recording = (inner: StepRunner): StepRunner => ({
      run: (call, step, signal): Promise<StepOutcome> => {
        log.push({ step, call });
        return inner.run(call, step, signal);
      },
    });
    const steps = await tempRunner();
    const saved: AgentState[] = [];
    // Die right after step 2 (the first call of the second turn) is checkpointed.
    await expect(
      runAgent(
        runOptions({
          provider: new ScriptedModel(script),
          steps: recording(steps),
          onCheckpoint: crashWhen((s) => s.nextStep - s.pending.length === 3, saved),
        }),
      ),
    ).rejects.toBeInstanceOf(Crash);
    expect(log.map((l) => l.step)).toEqual([0, 1, 2]);

    const checkpoint = JSON.parse(JSON.stringify(saved.at(-1))) as AgentState;
    expect(checkpoint.pending.map((p) => p.step)).toEqual([3]);
    const model = new ScriptedModel(script.slice(2));
    const out = await runAgent(runOptions({ provider: model, steps: recording(steps), state: checkpoint }));
    expect(out.reason).toBe('answer');
    expect(log.map((l) => l.step)).toEqual([0, 1, 2, 3]);
    expect(log[3]?.call.args).toEqual({ action: 'read-file', filePath: 'a' });
    expect(model.requests).toHaveLength(1);
    expect(out.state.turns).toBe(3);
  });
});
