import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeLlm, TrackedSystem, block, turnOf, type ChatReply } from '../src/fakes.js';
import { requireServices } from '../src/system.js';
import { summary } from './support.js';

/**
 * The model endpoint fails after a first good turn: 500s, or no answer at all. The worker's
 * provider retries LLM_MAX_RETRIES times (LLM_TIMEOUT_MS each), then the task fails with
 * `llm_error` and the file its first turn wrote stays readable.
 */
const MAX_RETRIES = 1;

describe.each([
  ['returns 500s', { status: 500, body: { error: { message: 'the model server broke', type: 'server_error' } } } as ChatReply, /HTTP 500/],
  ['hangs', 'hang' as ChatReply, /did not answer in time|timed? ?out/i],
] as const)('an LLM endpoint that %s', (fault, failure, message) => {
  let llm: FakeLlm;
  let sys: TrackedSystem;

  beforeAll(async () => {
    await requireServices();
    llm = await new FakeLlm((req) => {
      const { turn } = turnOf(req);
      if (turn === 0) return { text: `I will take notes first.\n\n${block({ action: 'create-file', filePath: 'notes.md', content: '# Notes\nwritten before the model broke' })}` };
      return failure;
    }).start();
    sys = new TrackedSystem();
    await sys.startApi();
    await sys.startWorker(`llm-${sys.id}`, llm.workerEnv({ LLM_MAX_RETRIES: String(MAX_RETRIES), LLM_TIMEOUT_MS: '1000' }));
  });

  afterAll(async () => {
    await sys?.close();
    await llm?.close();
  });

  it('retries a bounded number of times, then fails the task with llm_error and keeps its workspace', async () => {
    const id = await sys.submit({ prompt: 'Take notes, then think hard.' });
    const view = await sys.waitFinal(id);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('llm_error');
    expect(view.error?.message).toMatch(message);
    // One good request, then the failing turn: first try plus MAX_RETRIES, and the task job is not retried.
    expect(llm.requests).toBe(1 + 1 + MAX_RETRIES);
    expect(view.steps).toMatchObject([{ index: 0, action: 'create-file', status: 'completed' }]);
    const files = (await (await sys.request(`/v1/jobs/${id}/files`)).json()) as { files: { path: string }[] };
    expect(files.files.map((f) => f.path)).toEqual(['notes.md']);
    const notes = await sys.request(`/v1/jobs/${id}/files/notes.md`);
    expect(notes.status).toBe(200);
    expect(await notes.text()).toMatch(/written before the model broke/);
    // The event stream ends with the failure, saying why.
    const events = await sys.events(id);
    expect(events.at(-1)).toMatchObject({ type: 'status', data: { status: 'failed', error: { code: 'llm_error' } } });
    // Still no 5xx from our API: the model's failure is the task's, not the request's.
    expect(sys.serverErrors()).toEqual([]);
    summary(`llm (${fault})`, { faults: llm.requests - 1, tasks: 1, lost: 0, modelRequests: llm.requests, status: view.status, error: `${view.error?.code}: ${view.error?.message}` });
  });
});
