import { describe, expect, it } from 'vitest';
import { EXIT } from './args.js';
import { ResearchClient, type StreamedEvent } from '@research/client';
import { KEY, cli, playFinish, playStep, useApi } from '../test/api.js';

const api = useApi('clitest');

describe('SSE reconnect', () => {
  it('resumes with Last-Event-ID after the server is replaced, yielding every event once', async () => {
    const sent: (string | null)[] = [];
    const recordingFetch: typeof fetch = (input, init) => {
      if (String(input).endsWith('/events')) sent.push(new Headers(init?.headers).get('last-event-id'));
      return fetch(input, init);
    };
    const client = new ResearchClient({ baseUrl: api.url, apiKey: KEY, fetch: recordingFetch });
    const id = (await client.submit({ prompt: 'reconnect me' })).id;
    await api.store.lifecycle.start(id, { workerId: 'worker-a' });
    await playStep(api.store, id, 0, 'echo one');

    const got: StreamedEvent[] = [];
    const reconnects: (string | undefined)[] = [];
    let restarted = false;
    for await (const e of client.events(id, { onReconnect: (info) => reconnects.push(info.lastEventId) })) {
      got.push(e);
      if (!restarted && e.event.type === 'tool_result') {
        restarted = true;
        await api.restart({ abrupt: false });
        await playStep(api.store, id, 1, 'echo two');
        await playFinish(api.store, id, 'both steps ran');
      }
    }

    const stored = await api.store.events.read(id);
    expect(got.map((e) => e.id)).toEqual(stored.map((e) => e.id));
    expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
    expect(got.at(-1)?.event).toMatchObject({ type: 'status', status: 'completed' });
    // First connect sends none; every reconnect sends the id of the last event received.
    const firstCut = got.findIndex((e) => e.event.type === 'tool_result');
    expect(sent[0]).toBeNull();
    expect(reconnects.length).toBeGreaterThanOrEqual(1);
    expect(sent.length).toBe(reconnects.length + 1);
    expect(sent.at(-1)).toBe(got[firstCut]!.id);
  });

  it('`research follow` survives an abrupt API restart and prints each event once', async () => {
    const client = new ResearchClient({ baseUrl: api.url, apiKey: KEY });
    const id = (await client.submit({ prompt: 'follow across a restart', maxSteps: 3 })).id;
    await api.store.lifecycle.start(id, { workerId: 'worker-a' });
    await playStep(api.store, id, 0, 'echo one');

    const run = cli(['follow', id], { RESEARCH_API_URL: api.url, RESEARCH_API_KEY: KEY });
    await run.waitFor(/exit 0/);
    await api.restart({ abrupt: true });
    await run.waitFor(/connection lost/);
    await playStep(api.store, id, 1, 'echo two');
    await playStep(api.store, id, 2, 'echo three');
    await playFinish(api.store, id, 'three steps ran');
    const { code, stdout, stderr } = await run.done;
    expect(stderr).toBe('');
    expect(code).toBe(EXIT.ok);
    const lines = stdout.split('\n');
    const count = (l: string) => lines.filter((x) => x === l).length;
    expect(count('step 1/3 execute-command echo one')).toBe(1);
    expect(count('step 2/3 execute-command echo two')).toBe(1);
    expect(count('step 3/3 execute-command echo three')).toBe(1);
    expect(count('running on worker-a')).toBe(1);
    expect(count('finished (answer)')).toBe(1);
    expect(lines.filter((l) => l.startsWith('  exit 0'))).toHaveLength(3);
    expect(stdout).toContain('Summary:\n  three steps ran');
    expect(stdout).toContain(`Report: research files ${id} report.md`);
  });
});
