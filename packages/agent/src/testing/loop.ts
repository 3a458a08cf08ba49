/**
 * TEST HELPERS ONLY — not compiled into dist. Running the loop in a test: temp-dir step runners
 * that go away after each test, and the options of a run with what it reported collected.
 */
import type { TaskEvent } from '@research/contracts';
import { afterEach } from 'vitest';
import { type RunAgentOptions, runAgent } from '../loop.js';
import { OfflineModel } from '../providers/offline.js';
import { type AgentState, initialState } from '../state.js';
import { TempDirStepRunner } from './temp-dir-step-runner.js';

/** `TempDirStepRunner.create` for a test file: every runner it makes is disposed after its test. */
export function useTempRunners(): (...args: Parameters<typeof TempDirStepRunner.create>) => Promise<TempDirStepRunner> {
  const runners: TempDirStepRunner[] = [];
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.dispose()));
  });
  return async (...args) => {
    const runner = await TempDirStepRunner.create(...args);
    runners.push(runner);
    return runner;
  };
}

/**
 * The options of one run: the prompt "Research the market", 20 steps, a minute, a signal nobody
 * aborts, and the events and checkpoints collected into `events` and `checkpoints`; `over`
 * replaces any of them.
 */
export function runOptions(
  over: Partial<RunAgentOptions> & Pick<RunAgentOptions, 'provider' | 'steps'>,
): RunAgentOptions & { events: TaskEvent[]; checkpoints: AgentState[] } {
  const events: TaskEvent[] = [];
  const checkpoints: AgentState[] = [];
  const format = over.format ?? 'xml';
  return {
    state: initialState({ prompt: 'Research the market' }, { format }),
    format,
    maxSteps: 20,
    deadline: Date.now() + 60_000,
    signal: new AbortController().signal,
    onEvent: (e) => void events.push(e),
    onCheckpoint: (s) => void checkpoints.push(s),
    ...over,
    events,
    checkpoints,
  };
}

/** The offline model's plan through the loop on `steps`, within 40 steps (its plans take fewer). */
export async function runOffline(
  steps: TempDirStepRunner,
  over: Partial<RunAgentOptions> & Pick<RunAgentOptions, 'state' | 'format'>,
) {
  const { events, checkpoints, ...options } = runOptions({
    provider: new OfflineModel(),
    steps,
    maxSteps: 40,
    ...over,
  });
  return { outcome: await runAgent(options), steps, events, checkpoints };
}
