import { Router } from 'express';
import { AGENT_QUEUE, type TaskStore, type WorkerInfo, type WorkerRegistry } from '@research/queue';
import { tenantsOf } from './tenants.js';

export interface WorkersPageOptions {
  registry: WorkerRegistry;
  /** Task records, for the tenant of each running task. */
  store: TaskStore;
  /** A worker silent for longer than this is not listed. */
  staleMs: number;
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * `/workers` (a small server-rendered page linked from the board's menu) and `/workers.json`:
 * which workers are alive, their sandbox container and the tasks they run now, each with its
 * tenant.
 */
export function workersRouter(options: WorkersPageOptions): Router {
  const router = Router();
  const list = async () => {
    const workers = (await options.registry.alive(options.staleMs)).sort((a, b) => a.id.localeCompare(b.id));
    const tenants = await tenantsOf(
      options.store,
      workers.flatMap((w) => w.running),
    );
    return { workers, tenants };
  };

  router.get('/workers.json', async (_req, res) => {
    const { workers, tenants } = await list();
    res.set('Cache-Control', 'no-store').json({
      workers,
      tenants: Object.fromEntries(tenants),
      staleMs: options.staleMs,
      at: new Date().toISOString(),
    });
  });

  router.get('/workers', async (_req, res) => {
    const { workers, tenants } = await list();
    res
      .set('Cache-Control', 'no-store')
      .type('html')
      .send(renderWorkers(workers, Date.now(), tenants));
  });

  return router;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1_000));
  if (s < 60) return `${s} s ago`;
  if (s < 3_600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3_600)} h ${Math.floor((s % 3_600) / 60)} min ago`;
}

function row(w: WorkerInfo, now: number, tenants: ReadonlyMap<string, string>): string {
  const container =
    w.containerName || w.containerId
      ? `${escapeHtml(w.containerName ?? '')}${w.containerId ? ` <code>${escapeHtml(w.containerId.slice(0, 12))}</code>` : ''}`
      : '<span class="muted">none yet</span>';
  const running =
    w.running.length === 0
      ? '<span class="muted">idle</span>'
      : w.running
          .map(
            (id) =>
              `<a href="queue/${encodeURIComponent(AGENT_QUEUE)}/${encodeURIComponent(id)}">${escapeHtml(id)}</a>` +
              (tenants.has(id) ? ` <span class="tenant">${escapeHtml(tenants.get(id))}</span>` : ''),
          )
          .join('<br>');
  const started = Date.parse(w.startedAt);
  return `<tr>
  <td><strong>${escapeHtml(w.id)}</strong><div class="muted">${escapeHtml(w.host)} · pid ${escapeHtml(w.pid)}</div></td>
  <td>${container}<div class="muted">${escapeHtml(w.image ?? '')}</div></td>
  <td>${running}</td>
  <td><a href="queue/${encodeURIComponent(w.stepQueue)}">${escapeHtml(w.stepQueue)}</a></td>
  <td>${escapeHtml(ago(now - w.lastSeen))}<div class="muted">up since ${escapeHtml(Number.isNaN(started) ? w.startedAt : new Date(started).toISOString())}</div></td>
</tr>`;
}

export function renderWorkers(
  workers: WorkerInfo[],
  now: number,
  tenants: ReadonlyMap<string, string> = new Map(),
): string {
  const body =
    workers.length === 0
      ? '<p class="muted">No worker is alive. Start one with <code>npm run up</code> or <code>node apps/worker/dist/main.js</code>.</p>'
      : `<table>
<thead><tr><th>Worker</th><th>Sandbox container</th><th>Running tasks · tenant</th><th>Step queue</th><th>Last heartbeat</th></tr></thead>
<tbody>
${workers.map((w) => row(w, now, tenants)).join('\n')}
</tbody>
</table>`;
  // Relative links resolve against the board's base path, wherever the dashboard is mounted.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>Workers · research dashboard</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1f2933; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  nav { margin-bottom: 1.25rem; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); min-width: 60%; }
  th, td { text-align: left; vertical-align: top; padding: .55rem .9rem; border-bottom: 1px solid #e4e7eb; }
  th { font-weight: 600; background: #eef0f3; }
  .muted { color: #7b8794; font-size: .85em; }
  code { font-size: .9em; }
  .tenant { font-size: .8em; padding: 0 .35em; border-radius: .25em; background: #e4e7eb; }
</style>
</head>
<body>
<h1>Workers</h1>
<nav><a href="./">← queues</a> · <a href="workers.json">JSON</a> · ${workers.length} alive · refreshes every 5 s</nav>
${body}
</body>
</html>
`;
}
