import { Router, type Request } from 'express';
import type { ResultFile } from '@research/contracts';
import type { ApiDeps } from '../deps.js';
import { NotFoundError } from '../errors.js';
import { contentTypeOf, workspacePath } from '../file-path.js';
import { guard } from '../redis-guard.js';
import { taskRoute } from '../task-routes.js';

/** `GET /v1/jobs/:id/files` and `GET /v1/jobs/:id/files/<path>`, served from the copies kept in Redis. */
export function filesRouter(deps: ApiDeps): Router {
  const { redis, store } = deps;
  const router = Router();

  taskRoute(router, deps, '/jobs/:id/files', {
    get: async (_req, res, { id }) => {
      const listed = (await guard(redis, () => store.files.list(id))) ?? [];
      const files: ResultFile[] = listed.map(({ path, size }) => ({ path, size }));
      res.json({ files });
    },
  });

  taskRoute(router, deps, '/jobs/:id/files/*path', {
    get: async (req, res, { id }) => {
      // Judged on the raw URL: Express has already decoded `req.params.path` once, which would
      // hide one layer of encoding from the check.
      const path = workspacePath(rawFileTail(req));
      const [listed, bytes] = await guard(redis, () => Promise.all([store.files.list(id), store.files.read(id, path)]));
      if (bytes === undefined) {
        const entry = listed?.find((f) => f.path === path);
        if (entry && !entry.stored) {
          throw new NotFoundError(
            `${path} (${entry.size} bytes) is listed but was too big to be kept after the task`,
            'file_not_kept',
          );
        }
        throw new NotFoundError(`job ${id} has no file ${path}`);
      }
      res
        .status(200)
        .set({
          'Content-Type': contentTypeOf(path, bytes),
          'X-Content-Type-Options': 'nosniff',
          'Content-Security-Policy': "default-src 'none'; sandbox; frame-ancestors 'none'",
          'Cache-Control': 'no-store',
        })
        .send(bytes);
    },
  });

  return router;
}

function rawFileTail(req: Request): string {
  const rawPath = req.originalUrl.split('?', 1)[0] ?? '';
  const match = /^\/v1\/jobs\/[^/]+\/files\/(.*)$/.exec(rawPath);
  return match?.[1] ?? '';
}
