import type { TaskView } from '@research/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { block, requireServices } from '@research/testing';
import { FakeLlm, TrackedSystem, turnOf, type ChatReply } from '../src/fakes.js';
import { summary } from './support.js';

/**
 * The model endpoint fails after a first good turn: 500s, no answer at all, or an answer that
 * stops half-way. The worker's provider retries LLM_MAX_RETRIES times (LLM_TIMEOUT_MS each),
 * then the task fails with `llm_error` and the file its first turn wrote stays readable.
 */
const MAX_RETRIES = 1;

function faultyModel(failure: ChatReply): {
  llm: FakeLlm;
  sys: TrackedSystem;
  start(): Promise<void>;
  close(): Promise<void>;
} {
  const llm = new FakeLlm((req) => {
    const { turn } = turnOf(req);
    if (turn === 0)
      return {
        text: `I will take notes first.\n\n${block({ action: 'create-file', filePath: 'notes.md', content: '# Notes\nwritten before the model broke' })}`,
      };
    return failure;
  });
  const sys = new TrackedSystem();
  return {
    llm,
    sys,
    async start() {
      await requireServices();
      await llm.start();
      await sys.startApi();
      await sys.startWorker(
        `llm-${sys.id}`,
        llm.workerEnv({ LLM_MAX_RETRIES: String(MAX_RETRIES), LLM_TIMEOUT_MS: '1000' }),
      );
    },
    async close() {
      await sys.close();
      await llm.close();
    },
  };
}

/** The workspace written before the failure is still served, and the stream ends with the failure. */
async function expectWorkspaceKept(sys: TrackedSystem, id: string): Promise<void> {
  const files = (await (await sys.request(`/v1/jobs/${id}/files`)).json()) as { files: { path: string }[] };
  expect(files.files.map((f) => f.path)).toEqual(['notes.md']);
  const notes = await sys.request(`/v1/jobs/${id}/files/notes.md`);
  expect(notes.status).toBe(200);
  expect(await notes.text()).toMatch(/written before the model broke/);
  const events = await sys.events(id);
  expect(events.at(-1)).toMatchObject({ type: 'status', data: { status: 'failed' } });
  // Still no 5xx from our API: the model's failure is the task's, not the request's.
  expect(sys.serverErrors()).toEqual([]);
}

/** The summary line of one task the fault failed: every request after the first good turn was a fault. */
function failedTaskSummary(test: string, llm: FakeLlm, view: TaskView): void {
  summary(test, {
    faults: llm.requests - 1,
    tasks: 1,
    lost: 0,
    modelRequests: llm.requests,
    status: view.status,
    error: `${view.error?.code}: ${view.error?.message}`,
  });
}

describe.each([
  [
    'returns 500s',
    { status: 500, body: { error: { message: 'the model server broke', type: 'server_error' } } } as ChatReply,
    /HTTP 500/,
  ],
  ['hangs', 'hang' as ChatReply, /did not answer in time/],
] as const)('an LLM endpoint that %s', (fault, failure, message) => {
  const env = faultyModel(failure);
  beforeAll(() => env.start());
  afterAll(() => env.close());

  it('retries a bounded number of times, then fails the task with llm_error and keeps its workspace', async () => {
    const { sys, llm } = env;
    const id = await sys.submit({ prompt: 'Take notes, then think hard.' });
    const view = await sys.waitFinal(id);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('llm_error');
    expect(view.error?.message).toMatch(message);
    // One good request, then the failing turn: first try plus MAX_RETRIES, and the task job is not retried.
    expect(llm.requests).toBe(1 + 1 + MAX_RETRIES);
    expect(view.steps).toMatchObject([{ index: 0, action: 'create-file', status: 'completed' }]);
    await expectWorkspaceKept(sys, id);
    failedTaskSummary(`llm (${fault})`, llm, view);
  });
});

describe('an LLM endpoint that stops half-way through its answer', () => {
  const env = faultyModel('stall-body');
  const BUDGET_S = 20;
  let view: TaskView;
  beforeAll(() => env.start());
  afterAll(() => env.close());

  it('does not hold the task for ever: it fails within its time budget and keeps its workspace', async () => {
    const { sys, llm } = env;
    const id = await sys.submit({ prompt: 'Take notes, then think hard.', timeoutSeconds: BUDGET_S });
    view = await sys.waitFinal(id, (BUDGET_S + 60) * 1_000);
    expect(view.status).toBe('failed');
    await expectWorkspaceKept(sys, id);
    failedTaskSummary('llm (stalls mid-answer)', llm, view);
  });

  // LLM_TIMEOUT_MS bounds the whole answer, body included, not only the wait for its headers:
  // a body that never ends is a timed-out attempt, retried, then the task's llm_error, well
  // before the task's own budget.
  it('fails it with llm_error after LLM_TIMEOUT_MS and the retries, like a hanging endpoint', () => {
    expect(view.error?.code).toBe('llm_error');
    expect(view.error?.message).toMatch(/did not answer in time \(model fake, 2 attempts of at most 1000 ms each\)/);
    expect(env.llm.requests).toBe(1 + 1 + MAX_RETRIES);
    expect(view.steps).toMatchObject([{ index: 0, action: 'create-file', status: 'completed' }]);
  });
});
