import { Router, type Request } from 'express';
import { FINAL_STATUSES, type StoredTaskEvent } from '@research/contracts';
import { duplicateRedis, waitForRedis, type Redis } from '@research/queue';
import type { ApiDeps } from '../deps.js';
import { InvalidRequestError, NotFoundError, TooManyRequestsError } from '../errors.js';
import { guard } from '../redis-guard.js';
import { formatEvent, write, type SseStreams } from '../sse.js';
import { methodNotAllowed } from './method.js';
import { taskIdParam } from './jobs.js';

/** Comment lines keep proxies and load balancers from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** How long one XREAD blocks; between blocks the stream checks that its task still exists. */
const BLOCK_MS = 10_000;
const PAGE = 500;
/** Each live stream holds a Redis connection of its own; this caps what one API process opens. */
export const MAX_STREAMS = 1_000;
const STREAM_ID = /^\d{1,20}(-\d{1,20})?$/;

const isFinal = (e: StoredTaskEvent) => e.event.type === 'status' && FINAL_STATUSES.includes(e.event.status);

/** `GET /v1/jobs/:id/events`: past events, then live ones; ends after the final status. */
export function eventsRouter(deps: ApiDeps, streams: SseStreams): Router {
  const { redis, store, logger, env } = deps;
  const router = Router();

  router
    .route('/jobs/:id/events')
    .get(async (req, res) => {
      const id = taskIdParam(req);
      const lastEventId = lastEventIdOf(req);
      if (streams.size >= MAX_STREAMS)
        throw new TooManyRequestsError('too_many_streams', 'too many open event streams; retry shortly');
      // Read before the first replay page: if the task was already final then, the replay holds
      // everything there is and the stream can close without going live.
      const statusAtStart = await guard(redis, () => store.lifecycle.status(id));
      if (!statusAtStart) throw new NotFoundError(`no job ${id}`);
      const firstPage = await guard(redis, () => store.events.read(id, lastEventId ?? '-', PAGE));

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
    })
    .all(methodNotAllowed(['GET']));

  return router;
}

/** `Last-Event-ID` (what EventSource sends on reconnect) wins over `?lastEventId=` (first connect). */
function lastEventIdOf(req: Request): string | undefined {
  const header = req.get('last-event-id');
  const query = typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined;
  const value = header !== undefined && header.trim() !== '' ? header.trim() : query;
  if (value === undefined || value === '') return undefined;
  if (!STREAM_ID.test(value))
    throw new InvalidRequestError('Last-Event-ID must be an event id from this stream (like 1700000000000-0)');
  return value;
}
