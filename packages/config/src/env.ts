import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { z } from 'zod';

/** Reads a comma-separated list; empty entries are dropped. */
const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0),
);

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/**
 * A number from text, with a message that says so instead of zod's `received NaN`. Only type
 * issues get it: a schema-level message also replaced the range checks' own, so
 * `WORKER_CONCURRENCY=500` once said "expected a number" (the range is worded in config.ts).
 */
const num = () =>
  z.coerce.number({
    error: (i) => {
      if (i.code !== 'invalid_type') return undefined;
      if (i.input === undefined) return 'required';
      return i.expected === 'int' ? 'expected a whole number' : 'expected a number';
    },
  });

const port = num()
  .int('expected a whole port number')
  .min(1, 'expected a port from 1 to 65535')
  .max(65_535, 'expected a port from 1 to 65535');

/** Express `trust proxy` values: a boolean, a hop count, or a list of addresses, CIDRs and proxy-addr's names. */
const trustProxy = z.string().transform((s, ctx): boolean | number | string => {
  const v = s.trim();
  if (v === 'true' || v === 'false') return v === 'true';
  if (/^\d{1,3}$/.test(v)) return Number(v);
  const bad = v
    .split(',')
    .map((p) => p.trim())
    .find((p) => {
      if (['loopback', 'linklocal', 'uniquelocal'].includes(p)) return false;
      const [addr = '', bits, ...more] = p.split('/');
      const family = net.isIP(addr);
      if (family === 0 || more.length > 0) return true;
      return bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
    });
  if (bad !== undefined) {
    ctx.issues.push({
      code: 'custom',
      input: s,
      message: `expected true, false, a hop count, or addresses/CIDRs (not ${JSON.stringify(bad)})`,
    });
    return z.NEVER;
  }
  return v;
});

/**
 * A Standard Webhooks secret: `whsec_` and the base64 of the key, which the specification wants
 * 24 to 64 bytes long. Checked here so a bad one stops the process at start, not at the first
 * delivery.
 */
const webhookSecret = z.string().superRefine((s, ctx) => {
  const body = s.startsWith('whsec_') ? s.slice(6) : undefined;
  const bytes = body !== undefined && /^[A-Za-z0-9+/]+={0,2}$/.test(body) ? Buffer.from(body, 'base64').length : 0;
  if (bytes < 24 || bytes > 64)
    ctx.addIssue({
      code: 'custom',
      message: 'expected whsec_ followed by the base64 of 24 to 64 bytes (e.g. `whsec_$(openssl rand -base64 32)`)',
    });
});

/** `tenant=url,tenant=url`: one http(s) URL per tenant. */
const tenantUrls = z.string().transform((s, ctx): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const entry of s
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')) {
    const eq = entry.indexOf('=');
    const tenant = entry.slice(0, eq).trim();
    const url = entry.slice(eq + 1).trim();
    if (eq <= 0 || !/^[A-Za-z0-9_.-]{1,64}$/.test(tenant) || !/^https?:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) {
      ctx.issues.push({
        code: 'custom',
        input: s,
        message: `expected tenant=http(s)-URL entries (not ${JSON.stringify(entry.slice(0, 80))})`,
      });
      return z.NEVER;
    }
    out[tenant] = url;
  }
  return out;
});

/**
 * `<hostname>-<pid>-<6 hex>`, fixed for the life of the process. Hostname and pid alone collided
 * when `docker-compose --scale worker=3` ran with host networking: every replica was `vm-1`
 * (node is PID 1 in each container), so three workers shared one step queue and one sandbox
 * container. The suffix makes every process's id its own; the hostname-pid prefix still says
 * where it runs. The hostname is trimmed and cleaned to fit WORKER_ID's 64 allowed characters.
 */
function defaultWorkerId(): string {
  const tail = `-${process.pid}-${randomBytes(3).toString('hex')}`;
  const host = os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-') || 'worker';
  return `${host.slice(0, 64 - tail.length)}${tail}`;
}

/**
 * Every environment variable the system reads, with its default and a one-line description.
 * This table is the only place defaults live; the README's configuration table is checked
 * against it by a test. `credential` marks a value never echoed in errors (`url`: shown with
 * its userinfo stripped).
 */
export const ENV = {
  // --- Redis and queues
  REDIS_URL: {
    schema: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
    doc: 'Redis connection URL used by the API, workers and dashboard',
    credential: 'url',
  },
  QUEUE_PREFIX: {
    schema: z.string().min(1).default('{research}'),
    doc: 'BullMQ key prefix; hash-tagged so all keys of a queue land in one Redis Cluster slot',
  },
  REDIS_CLUSTER: {
    schema: bool.default(false),
    doc: 'REDIS_URL names one seed node of a Redis Cluster: every process opens a Cluster client (QUEUE_PREFIX must be hash-tagged)',
  },
  // --- API
  PORT: { schema: port.default(3000), doc: 'HTTP port of the API' },
  API_KEYS: {
    schema: csv.default([]),
    doc: 'comma-separated bearer keys of the API, each `tenant:key` (a bare key is tenant `default`), at least 16 characters (`npm run up` generates one when unset)',
    credential: 'value',
  },
  API_KEYS_FILE: {
    schema: z.string().min(1).optional(),
    doc: 'file of more keys, one `tenant sha256-hex-of-key [admin]` per line (`#` comments); an `admin` key sees every tenant',
  },
  API_RATE_LIMIT_PER_MIN: {
    schema: num().int().min(0).default(6_000),
    doc: 'requests one API key may make per minute (shared by all API processes through Redis); past it 429 with Retry-After; 0 = no limit',
  },
  AUTH_FAILURE_LIMIT_PER_MIN: {
    schema: num().int().min(1).default(20),
    doc: 'failed logins (wrong API key or dashboard password) one client address may make per minute; then every request from it gets 429 until the minute is over',
  },
  TENANT_MAX_QUEUED: {
    schema: num().int().min(0).default(10_000),
    doc: 'tasks of one tenant queued and not yet started; past it a submit gets 429 `quota_exceeded`; 0 = no limit',
  },
  TENANT_MAX_RUNNING: {
    schema: num().int().min(0).default(0),
    doc: "tasks of one tenant running at once across all workers; the tenant's other tasks wait (parked) without holding back other tenants'; 0 = no limit (tenants still share the workers fairly)",
  },
  TRUST_PROXY: {
    schema: trustProxy.default(false),
    doc: "Express `trust proxy`: `false` (use the socket's address), `true`, a hop count, or comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed",
  },
  MAX_BODY_BYTES: {
    schema: num()
      .int()
      .min(1024)
      .default(256 * 1024),
    doc: 'largest accepted request body; a larger declared Content-Length gets 413 before the body is read',
  },
  MAX_BATCH_BODY_BYTES: {
    schema: num()
      .int()
      .min(1024)
      .default(8 * 1024 * 1024),
    doc: 'largest accepted body of `POST /v1/jobs/batch` (up to 1,000 tasks), which has this limit instead of MAX_BODY_BYTES',
  },
  BODY_TIMEOUT_MS: {
    schema: num().int().min(100).max(600_000).default(5_000),
    doc: 'time a request has to deliver its whole body; a body that stalls is cut with 408',
  },
  // --- Dashboard
  DASHBOARD_PORT: { schema: port.default(3001), doc: 'HTTP port of the Bull Board dashboard' },
  DASHBOARD_USER: { schema: z.string().min(1).optional(), doc: 'dashboard login user (HTTP basic auth)' },
  DASHBOARD_PASSWORD: {
    schema: z.string().min(1).optional(),
    doc: 'dashboard login password',
    credential: 'value',
  },
  DASHBOARD_READONLY_LOOPBACK: {
    schema: bool.default(false),
    doc: 'allow a dashboard without login, read-only and bound to 127.0.0.1 only',
  },
  // --- Worker
  WORKER_ID: {
    schema: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." or "-" (at most 64)')
      .default(defaultWorkerId()),
    doc: "this worker's id; names its step queue `steps.<WORKER_ID>` and labels its container; the default adds a random suffix, so replicas that share a hostname and a PID (host networking, PID 1 in containers) still differ",
  },
  // Model-bound tasks wait on the model most of the time: a slot costs the worker ~0.2–0.6 MiB
  // (bench/RESULTS.md), so the limit is set by the container the tasks share (concurrent
  // commands' memory and pids), not by the worker. See the README's "Sizing a worker".
  WORKER_CONCURRENCY: {
    schema: num().int().min(1).max(1_024).default(64),
    doc: 'research tasks one worker runs at once (they share its container; see "Sizing a worker")',
  },
  WORKER_HEARTBEAT_MS: {
    schema: num().int().min(100).default(5_000),
    doc: 'how often a worker announces itself; a worker silent for 6 beats is reaped',
  },
  TASK_MAX_STEPS: {
    schema: num().int().min(1).max(500).default(40),
    doc: 'default step budget of a task (a request may ask for less or more, up to 500)',
  },
  TASK_TIMEOUT_SECONDS: { schema: num().int().min(1).default(900), doc: 'default wall-clock budget of a task' },
  TASK_MAX_REDIS_BYTES: {
    schema: num()
      .int()
      .min(0)
      .default(16 * 1024 * 1024),
    doc: 'what one task may keep in Redis (events, step outcomes, kept files); past it the task fails with storage_quota_exceeded before its next step, and its files are kept only within what is left; 0 = no cap',
  },
  WORKER_LOCK_MS: {
    schema: num().int().min(1_000).default(15_000),
    doc: "job lock of a running task; a killed worker's tasks move to another worker after about this long",
  },
  WORKER_STALLED_INTERVAL_MS: {
    schema: num().int().min(500).default(5_000),
    doc: 'how often workers look for tasks whose worker died',
  },
  TASK_RETENTION_HOURS: {
    schema: num().min(1).default(168),
    doc: "how long a finished task's record, events and files stay in Redis",
  },
  RESULT_MAX_BYTES: {
    schema: num()
      .int()
      .min(0)
      .default(5 * 1024 * 1024),
    doc: "total size of a finished task's files kept in Redis for the API",
  },
  // --- Sandbox
  SANDBOX_IMAGE: {
    schema: z.string().min(1).default('research-sandbox:latest'),
    doc: 'sandbox image (`kortix/suna:0.1.2.8` is the production image)',
  },
  SANDBOX_VOLUME: {
    schema: z.string().min(1).default('daytona-workspace'),
    doc: 'Docker volume mounted at /workspace; each task works in /workspace/<taskId>',
  },
  SANDBOX_NETWORK: { schema: z.string().min(1).default('none'), doc: 'Docker network mode of sandbox containers' },
  SANDBOX_MEMORY_MB: {
    schema: num().int().min(64).default(1024),
    doc: 'memory limit of a sandbox container (swap is not added)',
  },
  SANDBOX_CPUS: { schema: num().positive().max(256).default(1), doc: 'CPU limit of a sandbox container' },
  SANDBOX_PIDS: {
    schema: num().int().min(16).default(256),
    doc: 'process limit of a sandbox container (stops fork bombs)',
  },
  SANDBOX_COMMAND_TIMEOUT_MS: {
    schema: num().int().min(100).default(120_000),
    doc: 'default and maximum time of one execute-command',
  },
  SANDBOX_MAX_OUTPUT_BYTES: {
    schema: num()
      .int()
      .min(256)
      .default(64 * 1024),
    doc: 'stdout/stderr kept per command; the rest is cut with a marker',
  },
  SANDBOX_LIVE_OUTPUT_BYTES: {
    schema: num()
      .int()
      .min(0)
      .max(64 * 1024)
      .default(4 * 1024),
    doc: "live output (tool_output events) per command while it runs: a preview kept in the stream beside the step's outcome (0: none)",
  },
  SANDBOX_TASK_DISK_MB: {
    schema: num().int().min(0).default(1024),
    doc: 'disk one task may use in /workspace/<taskId> (and its home), in MiB; past it its commands are stopped with disk_quota_exceeded (0: no quota)',
  },
  SANDBOX_ON_SHUTDOWN: {
    schema: z.enum(['keep', 'stop', 'remove']).default('stop'),
    doc: 'what a worker does with its container when it shuts down',
  },
  SANDBOX_RETENTION_HOURS: {
    schema: num().min(0).default(72),
    doc: 'task workspaces older than this are deleted from the volume (0 keeps them for ever)',
  },
  SANDBOX_ISOLATION: {
    schema: z.enum(['worker', 'task']).default('worker'),
    doc: '`worker`: one container per worker; `task`: a fresh container per task from a warm pool',
  },
  SANDBOX_POOL_SIZE: {
    schema: num().int().min(0).max(32).default(2),
    doc: 'with SANDBOX_ISOLATION=task: started containers kept ready for the next tasks',
  },
  // --- LLM
  LLM_PROVIDER: {
    schema: z.enum(['offline', 'openai']).default('offline'),
    doc: '`offline` (deterministic, no network) or `openai` (any OpenAI-compatible endpoint)',
  },
  LLM_BASE_URL: { schema: z.url().optional(), doc: 'base URL of the OpenAI-compatible endpoint', credential: 'url' },
  LLM_API_KEY: { schema: z.string().optional(), doc: 'API key for the endpoint', credential: 'value' },
  LLM_MODEL: { schema: z.string().min(1).default('gpt-4o-mini'), doc: 'model name sent to the endpoint' },
  LLM_TIMEOUT_MS: { schema: num().int().min(100).default(120_000), doc: 'timeout of one model request' },
  LLM_MAX_RETRIES: {
    schema: num().int().min(0).max(10).default(2),
    doc: 'retries of a model request on 429, 5xx and connection errors',
  },
  LLM_STREAM: {
    schema: bool.default(false),
    doc: 'the openai provider streams its answers (`stream: true`); the event stream carries them as `model_delta` events while they come',
  },
  TOOL_CALL_FORMAT: {
    schema: z.enum(['xml', 'native']).default('xml'),
    doc: '`xml`: `<daytona-execute>` blocks in text; `native`: JSON-schema function calling',
  },
  // --- Web access (packages/web: the egress policy, search providers, page fetch)
  WEB_SEARCH_PROVIDER: {
    schema: z.enum(['none', 'searxng', 'tavily', 'brave']).default('none'),
    doc: '`none` (the model gets no web tools), or the search API behind web-search: `searxng`, `tavily` or `brave`',
  },
  WEB_SEARCH_URL: {
    schema: z.url({ protocol: /^https?$/ }).optional(),
    doc: 'base URL of the search API (required for searxng; tavily and brave default to their public API)',
  },
  WEB_SEARCH_API_KEY: { schema: z.string().min(1).optional(), doc: 'API key of tavily or brave' },
  WEB_FETCH_MAX_BYTES: {
    schema: num()
      .int()
      .min(1024)
      // A saved page is written with create-file, whose content stops at 10 MiB.
      .max(10 * 1024 * 1024)
      .default(2 * 1024 * 1024),
    doc: 'bytes of one fetched page read at most (up to 10 MiB); the rest is cut and the result marked truncated',
  },
  WEB_FETCH_TIMEOUT_MS: {
    schema: num().int().min(100).default(30_000),
    doc: 'time limit of one fetch or search, redirects included',
  },
  WEB_MAX_FETCHES_PER_TASK: {
    schema: num().int().min(0).default(20),
    doc: 'pages one task may fetch; further fetches are refused with egress_denied',
  },
  WEB_MAX_BYTES_PER_TASK: {
    schema: num()
      .int()
      .min(0)
      .default(20 * 1024 * 1024),
    doc: 'bytes one task may fetch in all; a fetch past it is cut or refused with egress_denied',
  },
  EGRESS_ALLOW_HOSTS: {
    schema: csv.default([]),
    doc: 'destinations allowed despite the default refusals: host names (`*.example.com`), `host:port`, IPs or CIDRs, comma-separated',
  },
  EGRESS_DENY_HOSTS: {
    schema: csv.default([]),
    doc: 'destinations always refused (same forms); deny wins over allow',
  },
  // --- Webhooks (deliveries of final statuses and progress, signed per Standard Webhooks)
  WEBHOOK_SECRET: {
    schema: webhookSecret.optional(),
    doc: 'signing secret of webhook deliveries, `whsec_` + base64 of 24 to 64 random bytes; without it a task with a webhook is refused (400 `webhooks_disabled`)',
    credential: 'value',
  },
  TENANT_WEBHOOK_URLS: {
    schema: tenantUrls.default({}),
    doc: "default webhook per tenant, `tenant=https://…` comma-separated; a task's own `webhook` wins",
  },
  WEBHOOK_ATTEMPTS: {
    schema: num().int().min(1).max(30).default(8),
    doc: 'attempts of one delivery (at least once: a 2xx ends it); with the default backoff 8 attempts span about 10 minutes',
  },
  WEBHOOK_BACKOFF_MS: {
    schema: num().int().min(10).default(5_000),
    doc: 'wait before the second attempt of a delivery, doubled after each failure (with jitter)',
  },
  WEBHOOK_TIMEOUT_MS: {
    schema: num().int().min(100).max(120_000).default(10_000),
    doc: 'time the receiver has to answer one attempt',
  },
  // --- Logging
  LOG_LEVEL: {
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    doc: 'pino log level',
  },
  LOG_PRETTY: { schema: bool.optional(), doc: 'pretty logs (default: only when stdout is a TTY)' },
} as const;

type EnvTable = typeof ENV;
export type EnvName = keyof EnvTable;

/** The parsed environment: one typed field per variable. */
export type Env = { [K in EnvName]: z.output<EnvTable[K]['schema']> };

/** A variable's default as text, for docs; undefined when it has none. */
export function envDefault(name: EnvName): string | undefined {
  const parsed = ENV[name].schema.safeParse(undefined);
  if (!parsed.success || parsed.data === undefined) return undefined;
  const v = parsed.data as unknown;
  if (name === 'WORKER_ID') return 'hostname-pid-random';
  if (Array.isArray(v)) return v.length > 0 ? v.join(',') : undefined;
  if (typeof v === 'object' && v !== null && Object.keys(v).length === 0) return undefined;
  return String(v);
}
