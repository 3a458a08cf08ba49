import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { Router } from 'express';
import tar from 'tar-stream';
import type { ApiDeps } from '../deps.js';
import { guard } from '../redis-guard.js';
import { taskRoute } from '../task-routes.js';

/** `GET /v1/jobs/:id/archive`: the task's kept files as one `.tar.gz`, streamed. */
export function archiveRouter(deps: ApiDeps): Router {
  const { redis, store, logger } = deps;
  const router = Router();

  taskRoute(router, deps, '/jobs/:id/archive', {
    get: async (_req, res, { id }) => {
      const listed = (await guard(redis, () => store.files.list(id))) ?? [];
      // Files too big to be kept after the task are listed without bytes: the archive cannot hold them.
      const kept = listed.filter((f) => f.stored);
      const omitted = listed.length - kept.length;
      res.status(200).set({
        'Content-Type': 'application/gzip',
        'Content-Disposition': `attachment; filename="research-${id}.tar.gz"`,
        'Cache-Control': 'no-store',
        'X-Archive-Files': String(kept.length),
        'X-Archive-Omitted-Files': String(omitted),
      });
      const pack = tar.pack();
      // Settles when the response is written or cut (a client that goes away ends it early).
      const done = pipeline(pack, createGzip(), res);
      const ended = done.then(
        () => false,
        () => false,
      );
      const mtime = new Date();
      try {
        // One file at a time from Redis: memory holds at most one file's bytes, whatever the archive's size.
        for (const file of kept) {
          const bytes = await guard(redis, () => store.files.read(id, file.path));
          if (bytes === undefined) continue;
          const written = new Promise<boolean>((resolve, reject) => {
            pack.entry({ name: `research-${id}/${file.path}`, size: bytes.length, mode: 0o644, mtime }, bytes, (err) =>
              err ? reject(err) : resolve(true),
            );
          });
          if (!(await Promise.race([written, ended]))) break;
        }
        pack.finalize();
      } catch (err) {
        // The headers went out already: the only honest answer left is a cut stream.
        logger.warn({ err, taskId: id }, 'archive failed part-way');
        pack.destroy(err as Error);
      }
      await done.catch(() => undefined);
    },
  });

  return router;
}
