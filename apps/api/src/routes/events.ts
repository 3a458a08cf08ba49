import { Router, type Request } from 'express';
import { FINAL_STATUSES, type StoredTaskEvent } from '@research/contracts';
import { duplicateRedis, waitForRedis, type Redis } from '@research/queue';
import type { ApiDeps } from '../deps.js';
import { InvalidRequestError, TooManyRequestsError } from '../errors.js';
import { guard } from '../redis-guard.js';
import { formatEvent, write, type SseStreams } from '../sse.js';
import { taskRoute } from '../task-routes.js';

/** Comment lines keep proxies and load balancers from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** How long one XREAD blocks; between blocks the stream checks that its task still exists. */
const BLOCK_MS = 10_000;
const PAGE = 500;
/** Each live stream holds a Redis connection of its own; this caps what one API process opens. */
export const MAX_STREAMS = 1_000;
const STREAM_ID = /^(\d{1,20})(?:-(\d{1,20}))?$/;
/** Both parts of a Redis stream id are unsigned 64-bit numbers. */
const U64_MAX = 2n ** 64n - 1n;

const isFinal = (e: StoredTaskEvent) => e.event.type === 'status' && FINAL_STATUSES.includes(e.event.status);

/** `GET /v1/jobs/:id/events`: past events, then live ones; ends after the final status. */
export function eventsRouter(deps: ApiDeps, streams: SseStreams): Router {
  const { redis, store, logger, env } = deps;
  const router = Router();

  taskRoute(router, deps, '/jobs/:id/events', {
    get: async (req, res, task) => {
      const { id } = task;
      const lastEventId = lastEventIdOf(req);
      if (streams.size >= MAX_STREAMS)
        throw new TooManyRequestsError('too_many_streams', 'too many open event streams; retry shortly');
      // Read before the first replay page (the ownership check read it): if the task was final
      // then, the replay holds everything there is and the stream can close without going live.
      const statusAtStart = task.status;
      const firstPage =
        lastEventId === MAX_STREAM_ID ? [] : await guard(redis, () => store.events.read(id, lastEventId ?? '-', PAGE));
      if (lastEventId !== undefined && firstPage.length === 0 && FINAL_STATUSES.includes(statusAtStart)) {
        // A reconnect after the final event: nothing will ever follow. 204 is what makes a
        // standard EventSource stop; a 200 with an empty body made it reconnect every 2 s for ever.
        res.status(204).set('Cache-Control', 'no-store').end();
        return;
      }

      res.status(200).set({
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.flushHeaders();

      let blocking: Redis | undefined;
      let closed = false;
      const stop = () => {
        closed = true;
        blocking?.disconnect();
      };
      const unregister = streams.add(() => {
        stop();
        res.end();
      });
      res.on('close', stop);
      const heartbeat = setInterval(() => {
        if (!res.writableEnded) res.write(': keep-alive\n\n');
      }, HEARTBEAT_MS);

      let after = lastEventId ?? '-';
      const send = async (events: StoredTaskEvent[]): Promise<boolean> => {
        for (const e of events) {
          await write(res, formatEvent(e.id, e.event.type, e.event));
          after = e.id;
          if (isFinal(e)) return true;
        }
        return false;
      };

      try {
        await write(res, 'retry: 2000\n\n');
        let finished = await send(firstPage);
        let page = firstPage;
        while (!finished && !closed && page.length === PAGE) {
          page = await guard(redis, () => store.events.read(id, after, PAGE));
          finished = await send(page);
        }
        if (finished || closed || FINAL_STATUSES.includes(statusAtStart)) return;

        // XREAD BLOCK holds the command for BLOCK_MS: no command timeout on this connection.
        blocking = duplicateRedis(redis, { connectionName: 'research-api-sse', commandTimeout: BLOCK_MS + 5_000 });
        blocking.on('error', () => {});
        await waitForRedis(blocking, env.REDIS_URL, 2_000);
        while (!finished && !closed) {
          const events = await store.events.wait(blocking, id, after, BLOCK_MS);
          if (events.length > 0) {
            finished = await send(events);
          } else {
            const status = await guard(redis, () => store.lifecycle.status(id));
            if (!status || FINAL_STATUSES.includes(status)) finished = true;
          }
        }
      } catch (err) {
        // Headers are out; the client reconnects with Last-Event-ID and misses nothing.
        if (!closed) logger.warn({ taskId: id, err: (err as Error).message }, 'event stream ended early');
      } finally {
        clearInterval(heartbeat);
        unregister();
        res.off('close', stop);
        blocking?.disconnect();
        if (!res.writableEnded) res.end();
      }
    },
  });

  return router;
}

const MAX_STREAM_ID = `${U64_MAX}-${U64_MAX}`;

/**
 * `Last-Event-ID` (what EventSource sends on reconnect) wins over `?lastEventId=` (first
 * connect). A value that cannot be an id of a Redis stream (parts over 2^64-1 included, which
 * Redis refused with an error that became a 500) is the caller's mistake: 400 naming the field.
 */
function lastEventIdOf(req: Request): string | undefined {
  const header = req.get('last-event-id');
  const query = typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined;
  const fromHeader = header !== undefined && header.trim() !== '';
  const value = fromHeader ? header.trim() : query;
  if (value === undefined || value === '') return undefined;
  const field = fromHeader ? 'Last-Event-ID' : 'lastEventId';
  const match = STREAM_ID.exec(value);
  const [ms, seq] = [match?.[1], match?.[2]].map((part) => (part === undefined ? undefined : BigInt(part)));
  if (ms === undefined || ms > U64_MAX || (seq !== undefined && seq > U64_MAX)) {
    throw new InvalidRequestError(
      `${field} must be an event id from this stream, like 1700000000000-0 (two numbers up to ${U64_MAX})`,
      fromHeader ? { header: field } : { parameter: field },
    );
  }
  return `${ms}-${seq ?? 0n}`;
}
