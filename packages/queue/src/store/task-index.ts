import { DEFAULT_TENANT } from '@research/config';
import type { TaskStatus } from '@research/contracts';
import type { Redis } from '../connection.js';
import { LuaScript } from './lua.js';
import type { TaskKeys } from './task-keys.js';

/**
 * A task's place in the index: `<createdAt in ms, 13 digits>|<id>`. Every member of an index set
 * has score 0, so the sets are ordered by member, which is (creation time, id): pages are exact
 * lexicographic ranges, and tasks created in the same millisecond (a batch) still have one order.
 */
export function indexPosition(createdAt: string, id: string): string {
  return `${String(Date.parse(createdAt)).padStart(13, '0')}|${id}`;
}

const POSITION = /^(\d{13})\|([A-Za-z0-9_-]{1,128})$/;

/** Whether `text` is a position (a cursor decodes to one). */
export function isIndexPosition(text: string): boolean {
  return POSITION.test(text);
}

/** One task as the index lists it. */
export interface IndexedTask {
  id: string;
  status: TaskStatus;
  createdAt: string;
  finishedAt?: string;
  tags: string[];
  promptPreview: string;
  tenant: string;
}

export interface IndexQuery {
  /** One tenant's tasks; undefined for every tenant's. */
  tenant?: string;
  status?: TaskStatus;
  tag?: string;
  /** Epoch ms: only tasks created strictly after / before. */
  createdAfterMs?: number;
  createdBeforeMs?: number;
  limit: number;
  /** The position of the last task of the page before. */
  after?: string;
}

export interface IndexPage {
  items: IndexedTask[];
  /** Where the next page starts; undefined on the last page. */
  next?: string;
}

/** Index entries one list call reads at most: a filter that matches little cannot hold Redis for long. */
const SCAN_BUDGET = 1_000;

/** Characters of the prompt kept for lists. */
const PREVIEW_CHARS = 120;

export function promptPreview(prompt: string): string {
  const flat = prompt.replace(/\s+/g, ' ').trim();
  return flat.length > PREVIEW_CHARS ? `${flat.slice(0, PREVIEW_CHARS - 1)}…` : flat;
}

/**
 * Lua shared by the scripts that change a task (its status transition, its deletion), so the
 * index changes in the same script as the record. The key layout is {@link TaskIndex}'s:
 * `<base><scope>`, `<base><scope>:s:<status>`, `<base><scope>:g:<tag>`, scope `t:<tenant>` and `all`.
 */
export const INDEX_LUA = `local function index_scopes(tenant)
  return {'t:' .. tenant, 'all'}
end
local function index_move(base, ttl, tenant, pos, from, to)
  for _, scope in ipairs(index_scopes(tenant)) do
    local s = base .. scope .. ':s:'
    if from ~= to then redis.call('ZREM', s .. from, pos) end
    redis.call('ZADD', s .. to, 0, pos)
    redis.call('EXPIRE', s .. to, ttl)
  end
end
local function index_remove(base, tenant, pos, status, tags)
  for _, scope in ipairs(index_scopes(tenant)) do
    local b = base .. scope
    redis.call('ZREM', b, pos)
    redis.call('ZREM', b .. ':s:' .. status, pos)
    for _, tag in ipairs(tags) do redis.call('ZREM', b .. ':g:' .. tag, pos) end
  end
end
`;

/**
 * KEYS: the set scanned. ARGV: max, min (ZRANGEBYLEX bounds), limit, scan budget, record key
 * prefix, status wanted ('' any). Returns the position to continue after ('' at the end), then
 * seven fields per task. Entries whose record is gone (expired, deleted) are dropped from the set.
 */
const LIST = new LuaScript<string[]>(
  'researchListTasks',
  `local limit, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local out, scanned, last, max, exhausted = {}, 0, '', ARGV[1], false
while #out < limit * 7 and scanned < budget do
  local batch = redis.call('ZREVRANGEBYLEX', KEYS[1], max, ARGV[2], 'LIMIT', 0, math.min(100, budget - scanned))
  if #batch == 0 then exhausted = true break end
  for _, pos in ipairs(batch) do
    scanned = scanned + 1
    last = pos
    local id = string.sub(pos, 15)
    local h = redis.call('HMGET', ARGV[5] .. id, 'status', 'createdAt', 'finishedAt', 'tags', 'preview', 'tenant')
    if not h[1] then
      redis.call('ZREM', KEYS[1], pos)
    elseif ARGV[6] == '' or h[1] == ARGV[6] then
      for _, v in ipairs({id, h[1], h[2] or '', h[3] or '', h[4] or '[]', h[5] or '', h[6] or ''}) do
        out[#out + 1] = v
      end
      if #out >= limit * 7 then break end
    end
  end
  max = '(' .. last
end
local next = ''
if not exhausted and last ~= '' and #redis.call('ZREVRANGEBYLEX', KEYS[1], '(' .. last, ARGV[2], 'LIMIT', 0, 1) > 0 then
  next = last
end
table.insert(out, 1, next)
return out`,
);

/**
 * The task index: sorted sets under the prefix, per tenant and across tenants (`all`, for admin
 * keys), each whole, per status and per tag. A task enters at creation (the same script as its
 * record), moves between status sets in the guarded transition's script and leaves in the
 * deletion's. Entries whose record expired are dropped when a list reads them; each set expires
 * once no task has been added to it for longer than any record lives.
 */
export class TaskIndex {
  /** Start of every index key. */
  readonly base: string;

  constructor(
    private readonly redis: Redis,
    private readonly keys: TaskKeys,
    /** Seconds an index set outlives the last task added to it. */
    readonly ttlSeconds: number,
  ) {
    this.base = `${keys.prefix}:idx:`;
  }

  private scope(tenant: string | undefined): string {
    return `${this.base}${tenant === undefined ? 'all' : `t:${tenant}`}`;
  }

  /** The sets a new (queued) task enters: its tenant's and `all`, each whole, `queued` and per tag. */
  newKeys(task: { tenant?: string; tags?: readonly string[] }): string[] {
    const keys: string[] = [];
    for (const scope of [this.scope(task.tenant ?? DEFAULT_TENANT), this.scope(undefined)])
      keys.push(scope, `${scope}:s:queued`, ...(task.tags ?? []).map((t) => `${scope}:g:${t}`));
    return keys;
  }

  /** One page of tasks, newest first. */
  async list(q: IndexQuery): Promise<IndexPage> {
    const scope = this.scope(q.tenant);
    const set = q.tag !== undefined ? `${scope}:g:${q.tag}` : q.status !== undefined ? `${scope}:s:${q.status}` : scope;
    // Exclusive upper bounds: the smaller of "before this time" and "after the cursor".
    const uppers = [
      ...(q.createdBeforeMs === undefined ? [] : [String(Math.max(0, q.createdBeforeMs)).padStart(13, '0')]),
      ...(q.after === undefined ? [] : [q.after]),
    ].sort();
    const max = uppers[0] === undefined ? '+' : `(${uppers[0]}`;
    const min =
      q.createdAfterMs === undefined ? '-' : `[${String(Math.max(0, q.createdAfterMs + 1)).padStart(13, '0')}`;
    const reply = await LIST.run(
      this.redis,
      [set],
      [
        max,
        min,
        q.limit,
        SCAN_BUDGET,
        this.keys.record(''),
        q.tag !== undefined && q.status !== undefined ? q.status : '',
      ],
    );
    const [next = '', ...fields] = reply;
    const items: IndexedTask[] = [];
    for (let i = 0; i + 6 < fields.length; i += 7) {
      const [id, status, createdAt, finishedAt, tags, preview, tenant] = fields.slice(i, i + 7) as string[] as [
        string,
        TaskStatus,
        string,
        string,
        string,
        string,
        string,
      ];
      items.push({
        id,
        status,
        createdAt,
        ...(finishedAt ? { finishedAt } : {}),
        tags: JSON.parse(tags) as string[],
        promptPreview: preview,
        tenant: tenant || DEFAULT_TENANT,
      });
    }
    return next === '' ? { items } : { items, next };
  }
}
