import { z } from 'zod';
import {
  ApiErrorBody,
  BatchItem,
  BatchResult,
  MAX_BATCH_TASKS,
  ResultFile,
  TASK_ID_PATTERN,
  TaskAccepted,
  TaskEvent,
  TaskList,
  TaskRequest,
  TaskView,
  UsageReport,
} from '@research/contracts';
import { opsPaths } from './openapi-ops.js';

const FilesList = z.object({ files: z.array(ResultFile) });

function schema(s: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  // Refinements (metadata key rules, NUL check) cannot be expressed in JSON Schema; the API
  // still enforces them.
  const { $schema: _ignored, ...rest } = z.toJSONSchema(s, {
    io,
    unrepresentable: 'any',
    target: 'draft-2020-12',
  }) as Record<string, unknown>;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ref('ApiErrorBody') } },
});
const json = (name: string, description: string) => ({
  description,
  content: { 'application/json': { schema: ref(name) } },
});
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: TASK_ID_PATTERN.source } };
const retryAfter = {
  'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 1 } },
};
const tooMany = (description: string) => ({ ...errorResponse(description), headers: retryAfter });
const common = {
  '401': errorResponse('Missing or wrong bearer key'),
  '404': errorResponse(
    "No such job — also for another tenant's job (never 403, so ids are not confirmed); admin keys see every tenant",
  ),
  '429': tooMany(
    'This key made more than API_RATE_LIMIT_PER_MIN requests this minute (`rate_limited`), or this client address failed authentication AUTH_FAILURE_LIMIT_PER_MIN times (`too_many_auth_failures`)',
  ),
  '503': errorResponse('Redis unavailable'),
};

/** OpenAPI 3.1 document of the v1 API, generated from the contract schemas. */
export function openApiDocument(): Record<string, unknown> {
  const ops = opsPaths({ ref, json, errorResponse, tooMany, idParam, common });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Research jobs API',
      version: '1.0.0',
      contact: { name: 'Research jobs maintainers' },
      description:
        'Submit research tasks, follow their events, cancel them and read their files. All /v1 routes need `Authorization: Bearer <key>`. ' +
        "Every key belongs to a tenant: a key sees only its tenant's tasks (another tenant's task answers 404, as an unknown one does), an admin key sees all. " +
        '/healthz, /readyz, /metrics and /openapi.json need no key (put /metrics behind your network policy).',
    },
    // Relative: the API is wherever this document was fetched from (one origin serves both).
    servers: [{ url: '/', description: 'The API that served this document' }],
    tags: [
      { name: 'jobs', description: 'Submit, find, inspect, cancel and delete research tasks' },
      { name: 'events', description: "A task's events as Server-Sent Events" },
      { name: 'files', description: "A task's kept files, one by one or as one archive" },
      { name: 'usage', description: "What a tenant's tasks used" },
      { name: 'operations', description: 'Health, readiness, metrics and this document (no key needed)' },
    ],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        TaskRequest: schema(TaskRequest, 'input'),
        TaskAccepted: schema(TaskAccepted),
        TaskView: schema(TaskView),
        TaskEvent: schema(TaskEvent),
        FilesList: schema(FilesList),
        ApiErrorBody: schema(ApiErrorBody),
        TaskList: schema(TaskList),
        BatchRequest: {
          type: 'object',
          required: ['tasks'],
          additionalProperties: false,
          properties: {
            tasks: {
              type: 'array',
              minItems: 1,
              maxItems: MAX_BATCH_TASKS,
              // Each item is read on its own: one that is not a BatchItem gets its error in its
              // place in the answer, so the batch as a request is valid whatever its items hold.
              items: {
                anyOf: [
                  ref('BatchItem'),
                  { description: 'Anything else: refused in its place in the answer, the other items go on' },
                ],
              },
            },
          },
        },
        BatchItem: schema(BatchItem, 'input'),
        BatchResult: schema(BatchResult),
        UsageReport: schema(UsageReport),
      },
    },
    paths: {
      '/v1/jobs': {
        post: {
          operationId: 'submitJob',
          tags: ['jobs'],
          summary: 'Submit a research task',
          description:
            'Queues one task for a worker and answers at once with its id and links. `tags`, `priority` (1-10, higher first) ' +
            'and `ttlSeconds` (a task not started in time ends `failed`, error code `expired`) are optional. A repeat with the ' +
            'same `Idempotency-Key` returns the task the key already names.',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' },
              description: 'A repeat with the same key (per tenant, 24 h) returns the same task',
            },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: ref('TaskRequest') } } },
          responses: {
            '202': json('TaskAccepted', 'Task queued (or the task an Idempotency-Key already named)'),
            '400': errorResponse('Invalid body (`invalid_request`, `invalid_json`) or Idempotency-Key'),
            '401': common['401'],
            '408': errorResponse(
              'The body did not arrive within BODY_TIMEOUT_MS (`request_timeout`); the connection is closed',
            ),
            '409': errorResponse('The Idempotency-Key was used for a different request (`idempotency_key_reused`)'),
            '413': errorResponse(
              'Body larger than MAX_BODY_BYTES (a declared Content-Length is refused before the body is read)',
            ),
            '415': errorResponse('Content-Type is not application/json'),
            '429': tooMany(
              'The tenant has TENANT_MAX_QUEUED tasks queued and not yet started (`quota_exceeded`), or one of the limits of every route (`rate_limited`, `too_many_auth_failures`)',
            ),
            '503': common['503'],
          },
        },
        get: ops.listJobs,
      },
      '/v1/jobs/batch': { post: ops.submitBatch },
      '/v1/jobs/{id}': {
        get: {
          operationId: 'getJob',
          tags: ['jobs'],
          summary: 'A task with its progress, steps and result',
          description:
            "The task's status, progress, steps (with attempts and exit codes), result or error, tags and usage.",
          parameters: [idParam],
          responses: { '200': json('TaskView', 'The task'), ...common },
        },
        delete: ops.deleteJob,
      },
      '/v1/jobs/{id}/archive': { get: ops.getJobArchive },
      '/v1/usage': { get: ops.getUsage },
      '/v1/jobs/{id}/events': {
        get: {
          operationId: 'streamJobEvents',
          tags: ['events'],
          summary: 'Server-Sent Events: past events, then live ones; closes after the final status',
          description:
            'A `text/event-stream`: each message has `id:` (the stream id, to resume with Last-Event-ID), `event:` (the ' +
            'event type) and `data:` (one TaskEvent as JSON, see `x-sse-data`). The stream sends the past events, then the ' +
            'live ones, and closes after the final status.',
          parameters: [
            idParam,
            {
              name: 'Last-Event-ID',
              in: 'header',
              required: false,
              schema: { type: 'string' },
              description: 'Resume after this event id (two numbers up to 2^64-1: `1700000000000-0`)',
            },
            {
              name: 'lastEventId',
              in: 'query',
              required: false,
              schema: { type: 'string' },
              description: 'Same as Last-Event-ID, for the first connection',
            },
          ],
          responses: {
            '200': {
              description: 'Each message: `id:` stream id, `event:` the event type, `data:` a TaskEvent as JSON',
              content: {
                // The body is text made of messages; OpenAPI 3.1 has no schema for the items of a
                // stream, so the data of each message is given beside it (3.2 calls it itemSchema).
                'text/event-stream': {
                  schema: {
                    type: 'string',
                    description: 'Messages of `id:`, `event:` and `data:` lines, each ended by an empty line',
                  },
                  'x-sse-data': ref('TaskEvent'),
                },
              },
            },
            '204': {
              description:
                'A reconnect (Last-Event-ID or lastEventId) after the final event of a finished task: nothing will follow, and a standard EventSource stops',
            },
            '400': errorResponse('Last-Event-ID or lastEventId is not an event id (the message names the field)'),
            ...common,
          },
        },
      },
      '/v1/jobs/{id}/cancel': {
        post: {
          operationId: 'cancelJob',
          tags: ['jobs'],
          summary: 'Cancel a queued or running task',
          description:
            'A queued task ends `cancelled` at once; a running one is stopped by its worker (its running command is ' +
            'killed), and the answer shows it still running until then.',
          parameters: [idParam],
          responses: {
            '202': json('TaskView', 'Cancelled (queued task) or cancel requested (running task)'),
            '409': errorResponse('Already finished (`already_finished`)'),
            ...common,
          },
        },
      },
      '/v1/jobs/{id}/files': {
        get: {
          operationId: 'listJobFiles',
          tags: ['files'],
          summary: "The task's kept files",
          description:
            "Paths and sizes of the files the worker kept from the task's workspace (snapshots while it runs, the last at its end).",
          parameters: [idParam],
          responses: { '200': json('FilesList', 'Files (empty until the worker saves a snapshot)'), ...common },
        },
      },
      '/v1/jobs/{id}/files/{path}': {
        get: {
          operationId: 'getJobFile',
          tags: ['files'],
          summary: "One file's bytes",
          description:
            'The bytes of one kept file, as an attachment-safe download (nosniff, a sandboxing CSP). The path is one ' +
            'percent-encoded segment (`data%2Fprices.csv`); the API takes it unencoded too (`files/data/prices.csv`).',
          parameters: [
            idParam,
            {
              name: 'path',
              in: 'path',
              required: true,
              schema: { type: 'string' },
              description: 'Workspace-relative path as one segment, `/` encoded as `%2F`',
            },
          ],
          responses: {
            '200': { description: 'The file', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
            '400': errorResponse('Path outside the workspace (`path_outside_workspace`)'),
            ...common,
            '404': errorResponse('No such job or file, or `file_not_kept` when the file was too big to keep'),
          },
        },
      },
      '/healthz': {
        get: {
          operationId: 'getHealth',
          tags: ['operations'],
          summary: 'Liveness',
          description: 'Answers 200 while the process serves requests; it does not look at Redis (see /readyz).',
          security: [],
          responses: { '200': { description: 'The process is up' } },
        },
      },
      '/readyz': {
        get: {
          operationId: 'getReadiness',
          tags: ['operations'],
          summary: 'Readiness: Redis answers PING',
          description: 'Answers 200 once Redis answers, 503 while it does not: what a load balancer should route by.',
          security: [],
          responses: { '200': { description: 'Ready' }, '503': errorResponse('Redis unavailable') },
        },
      },
      '/metrics': {
        get: {
          operationId: 'getMetrics',
          tags: ['operations'],
          summary: 'Prometheus metrics',
          description:
            'Counters and gauges read from Redis at each scrape (every API replica reports the whole system), by tenant where it matters.',
          security: [],
          responses: {
            '200': { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'getOpenApiDocument',
          tags: ['operations'],
          summary: 'This document',
          description: 'The OpenAPI 3.1 document of this API, generated from the schemas the API validates with.',
          security: [],
          responses: {
            '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } },
          },
        },
      },
    },
  };
}
