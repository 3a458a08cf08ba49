import {
  DEFAULT_LIST_LIMIT,
  MAX_BATCH_TASKS,
  MAX_LIST_LIMIT,
  MAX_USAGE_DAYS,
  TAG_PATTERN,
  TASK_STATUSES,
} from '@research/contracts';

type Obj = Record<string, unknown>;

/** The helpers of `openapi.ts` these operations are written with. */
export interface OpenApiParts {
  ref: (name: string) => Obj;
  json: (name: string, description: string) => Obj;
  errorResponse: (description: string) => Obj;
  tooMany: (description: string) => Obj;
  idParam: Obj;
  common: Record<'401' | '404' | '429' | '503', Obj>;
}

const query = (name: string, description: string, schema: Obj): Obj => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});

const tenantParam = query(
  'tenant',
  "Admin keys only: one tenant's (default: every tenant's). Another key may only name its own tenant.",
  { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
);

/** The operations for operating many tasks: list, batch, delete, archive, usage. */
export function opsPaths({ ref, json, errorResponse, tooMany, idParam, common }: OpenApiParts): Record<string, Obj> {
  const { '404': _notFound, ...notTask } = common;
  return {
    listJobs: {
      operationId: 'listJobs',
      tags: ['jobs'],
      summary: "List the caller's tasks",
      description:
        "The caller's tenant's tasks, newest first, filtered by status, tag and creation time, one page at a time: " +
        'pass `nextCursor` as `cursor` for the next page (null on the last). Items are compact; `GET /v1/jobs/{id}` has the rest. ' +
        'A page may hold fewer than `limit` items while `nextCursor` is set (a narrow filter reads at most 1,000 entries per page).',
      parameters: [
        query('status', 'Only tasks with this status', { type: 'string', enum: [...TASK_STATUSES] }),
        query('tag', 'Only tasks with this tag', { type: 'string', pattern: TAG_PATTERN.source }),
        query('createdAfter', 'Only tasks created after this instant (exclusive)', {
          type: 'string',
          format: 'date-time',
        }),
        query('createdBefore', 'Only tasks created before this instant (exclusive)', {
          type: 'string',
          format: 'date-time',
        }),
        query('limit', `Items per page (default ${DEFAULT_LIST_LIMIT})`, {
          type: 'integer',
          minimum: 1,
          maximum: MAX_LIST_LIMIT,
          default: DEFAULT_LIST_LIMIT,
        }),
        query('cursor', 'The `nextCursor` of the page before, as it came', { type: 'string', maxLength: 512 }),
        tenantParam,
      ],
      responses: {
        '200': json('TaskList', 'One page of tasks'),
        '400': errorResponse(
          'A parameter is invalid (the message names it), or the cursor is not one this API gave out',
        ),
        ...notTask,
      },
    },
    submitBatch: {
      operationId: 'submitBatch',
      tags: ['jobs'],
      summary: `Submit up to ${MAX_BATCH_TASKS} tasks at once`,
      description:
        'Each item is a task request with its own optional `idempotencyKey`, read and admitted on its own: an invalid item, ' +
        "or one past the tenant's queued quota, gets its error in its place and the others are queued. The answer is 200 " +
        'whenever the batch could be read, with one result per item in order: `{id}` or `{error: {code, message}}`. ' +
        'The body limit is MAX_BATCH_BODY_BYTES.',
      requestBody: { required: true, content: { 'application/json': { schema: ref('BatchRequest') } } },
      responses: {
        '200': json('BatchResult', 'One result per item, in order'),
        '400': errorResponse(
          'Not a batch: not an object, no `tasks`, or more than 1,000 of them (`invalid_request`, `invalid_json`)',
        ),
        '401': common['401'],
        '408': errorResponse('The body did not arrive within BODY_TIMEOUT_MS (`request_timeout`)'),
        '413': errorResponse('Body larger than MAX_BATCH_BODY_BYTES'),
        '415': errorResponse('Content-Type is not application/json'),
        '429': tooMany('One of the limits of every route (`rate_limited`, `too_many_auth_failures`)'),
        '503': common['503'],
      },
    },
    deleteJob: {
      operationId: 'deleteJob',
      tags: ['jobs'],
      summary: 'Delete a finished task',
      description:
        "Removes a finished task's record, events, steps, kept files, list entries and jobs; the worker that ran it " +
        'removes its workspace. Afterwards every route answers 404 for it. Usage sums keep what it used.',
      parameters: [idParam],
      responses: {
        '204': { description: 'Deleted' },
        '409': errorResponse('The task is queued or running (`not_finished`): cancel it first, then delete it'),
        ...common,
      },
    },
    getJobArchive: {
      operationId: 'getJobArchive',
      tags: ['files'],
      summary: "The task's kept files as one .tar.gz",
      description:
        'A gzip-compressed tar of the kept files under `research-<id>/`, streamed. Files too big to be kept after the task ' +
        '(listed with `GET /v1/jobs/{id}/files` but answering `file_not_kept`) are left out; `X-Archive-Omitted-Files` counts them.',
      parameters: [idParam],
      responses: {
        '200': {
          description: 'The archive',
          headers: {
            'Content-Disposition': {
              description: 'attachment; filename="research-<id>.tar.gz"',
              schema: { type: 'string' },
            },
            'X-Archive-Files': { description: 'Files in the archive', schema: { type: 'integer' } },
            'X-Archive-Omitted-Files': { description: 'Kept files left out (too big)', schema: { type: 'integer' } },
          },
          content: { 'application/gzip': { schema: { type: 'string', format: 'binary' } } },
        },
        ...common,
      },
    },
    getUsage: {
      operationId: 'getUsage',
      tags: ['usage'],
      summary: "The tenant's usage per day",
      description:
        "Model calls, tokens, steps, command time and fetched bytes of the caller's tenant's tasks, per UTC day from `from` " +
        `to \`to\` (inclusive; default the 30 days up to today; at most ${MAX_USAGE_DAYS}) and summed. Counted as tasks run; ` +
        'deleting a task does not take its usage back.',
      parameters: [
        query('from', 'First day, YYYY-MM-DD (UTC)', { type: 'string', format: 'date' }),
        query('to', 'Last day, YYYY-MM-DD (UTC); default today', { type: 'string', format: 'date' }),
        tenantParam,
      ],
      responses: {
        '200': json('UsageReport', 'The sums and the days'),
        '400': errorResponse('A date is invalid, `from` is after `to`, or the range is too long'),
        ...notTask,
      },
    },
  };
}
