import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createParser } from 'eventsource-parser';
import { FINAL_STATUSES } from '@research/contracts';
import { freePort, sleep, type System } from '../src/system.js';

export { sleep };

/** One line per chaos test, so the numbers can be quoted. */
export function summary(test: string, counts: Record<string, number | string>): void {
  console.log(
    `chaos ${test}: ${Object.entries(counts)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
}

/**
 * A redis-server of our own (AOF on, RDB off) on a free loopback port, in a temporary
 * directory, so a test may stop and restart it without touching the shared Redis.
 */
export class OwnRedis {
  port = 0;
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'chaos-redis-'));

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        '--save',
        '',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const until = Date.now() + 15_000;
    while (!/Ready to accept connections/.test(out)) {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
      if (Date.now() > until) throw new Error(`redis-server did not start: ${out}`);
      await sleep(50);
    }
  }

  /** Stops it the way an operator would (SIGTERM: the AOF is flushed). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  async close(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface FollowedEvent {
  id: string;
  type: string;
  data: unknown;
}

/**
 * Follows a task's SSE stream like a browser's EventSource: when the connection drops or the
 * stream ends before the final status, it reconnects with `Last-Event-ID` (retrying while the
 * API is away) until it has seen the final status. Returns every event received, in order, and
 * how many times it had to reconnect.
 */
export async function follow(
  sys: System,
  id: string,
  opts: { onEvent?: (e: FollowedEvent) => void; timeoutMs?: number } = {},
): Promise<{ events: FollowedEvent[]; reconnects: number }> {
  const events: FollowedEvent[] = [];
  let reconnects = 0;
  let lastId: string | undefined;
  const until = Date.now() + (opts.timeoutMs ?? 180_000);
  const isFinal = (e: FollowedEvent) =>
    e.type === 'status' && FINAL_STATUSES.includes((e.data as { status: never }).status);
  for (let connection = 0; ; connection++) {
    if (Date.now() > until)
      throw new Error(`gave up following ${id} after ${reconnects} reconnects; got ${events.length} events`);
    if (connection > 0) {
      reconnects++;
      await sleep(200);
    }
    let res: Response;
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastId) headers['last-event-id'] = lastId;
      res = await fetch(`${sys.apiUrl}/v1/jobs/${id}/events`, {
        headers: { ...headers, authorization: `Bearer ${sys.apiKey}` },
      });
    } catch {
      continue; // the API is not listening (yet)
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 500 || res.status === 429) continue;
      throw new Error(`events answered ${res.status}`);
    }
    let done = false;
    const parser = createParser({
      onEvent: (e) => {
        const event = { id: e.id ?? '', type: e.event ?? 'message', data: JSON.parse(e.data) as unknown };
        events.push(event);
        lastId = event.id;
        opts.onEvent?.(event);
        if (isFinal(event)) done = true;
      },
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
        parser.feed(decoder.decode(chunk, { stream: true }));
    } catch {
      // connection reset: reconnect below
    }
    if (done) return { events, reconnects };
  }
}
