import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskView } from '@research/contracts';
import { EXIT } from './args.js';
import { ResearchClient } from '@research/client';
import { followTask } from './follow.js';
import { cli } from '../test/api.js';

const ID = 'b3f1c2d4-0000-4000-8000-00000000f011';
const KEY = 'fallback-test-key-0123456789';

/**
 * An API whose event route is broken (500 on every connection) while the task's status works:
 * the task runs for a few status reads, then completes.
 */
function brokenEventsApi() {
  let reads = 0;
  const eventAttempts: number[] = [];
  const view = (): TaskView => {
    reads += 1;
    const base = {
      id: ID,
      prompt: 'Research current market conditions',
      createdAt: '2026-01-01T00:00:00.000Z',
      steps: [],
      tenant: 'default',
    };
    if (reads < 3) return { ...base, status: 'queued', progress: { step: 0, maxSteps: 4, phase: 'queued' } };
    if (reads < 6)
      return {
        ...base,
        status: 'running',
        startedAt: '2026-01-01T00:00:01.000Z',
        workerId: 'worker-z',
        progress: { step: reads - 3, maxSteps: 4, phase: 'running-step' },
      };
    return {
      ...base,
      status: 'completed',
      startedAt: '2026-01-01T00:00:01.000Z',
      finishedAt: '2026-01-01T00:00:03.000Z',
      workerId: 'worker-z',
      progress: { step: 3, maxSteps: 4, phase: 'done' },
      result: { summary: 'followed by status', files: [{ path: 'report.md', size: 10 }] },
    };
  };
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${KEY}`) {
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end('{"error":{"code":"unauthorized","message":"no"}}');
      return;
    }
    if (req.url === `/v1/jobs/${ID}/events`) {
      eventAttempts.push(Date.now());
      res
        .writeHead(500, { 'content-type': 'application/json' })
        .end('{"error":{"code":"internal","message":"internal error"}}');
      return;
    }
    if (req.url === `/v1/jobs/${ID}`) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view()));
      return;
    }
    res.writeHead(404).end();
  });
  return {
    server,
    eventAttempts,
    reads: () => reads,
    reset: () => {
      reads = 0;
      eventAttempts.length = 0;
    },
  };
}

const api = brokenEventsApi();
let url: string;

beforeAll(async () => {
  await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  api.server.closeAllConnections();
  await new Promise<void>((resolve) => api.server.close(() => resolve()));
});

describe('follow when the event stream keeps failing', () => {
  it('gives up on the stream after a bounded number of attempts and follows the status to the end', async () => {
    api.reset();
    const lines: string[] = [];
    const client = new ResearchClient({ baseUrl: url, apiKey: KEY });
    const view = await followTask(client, ID, {
      out: { write: (c: string) => lines.push(c) },
      tty: false,
      pollIntervalMs: 20,
      stream: { maxFailures: 4, reconnectDelayMs: 10 },
    });
    expect(view.status).toBe('completed');
    expect(api.eventAttempts).toHaveLength(4);
    const out = lines.join('');
    expect(out).toContain("event stream unavailable (internal error); following the task's status instead");
    expect(out).toContain('running · step 1/4 · running-step');
    expect(out).toContain('completed · step 3/4 · done');
    expect(out).toContain('Summary:\n  followed by status');
  });

  it('`research follow` as a user runs it (what `submit --follow` does after submitting): ends with the task, exit 0', async () => {
    api.reset();
    const run = cli(['follow', ID], { RESEARCH_API_URL: url, RESEARCH_API_KEY: KEY });
    const { code, stdout, stderr } = await run.done;
    expect(stderr).toBe('');
    expect(code).toBe(EXIT.ok);
    // The default bound: six attempts, then status reads.
    expect(api.eventAttempts).toHaveLength(6);
    expect(stdout).toContain('following the task');
    expect(stdout).toContain('Summary:\n  followed by status');
    expect(stdout).toContain(`Report: research files ${ID} report.md`);
  }, 60_000);
});
