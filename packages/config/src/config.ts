import { z } from 'zod';
import { ENV, type Env, type EnvName } from './env.js';
import { redactUrl } from './redact.js';

/** Bad configuration: names every offending variable and what was expected. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`);
  }
}

/** Redis hashes only what is between the first `{` and the next `}`, when that is not empty. */
const HASH_TAG = /^[^{]*\{[^}]+\}/;

/**
 * Parses the environment once. Empty strings count as unset so `FOO=` in a compose file
 * falls back to the default instead of failing.
 */
export function loadEnv(source: Record<string, string | undefined> = process.env): Env {
  const out: Record<string, unknown> = {};
  const problems: { variable: string; message: string }[] = [];
  for (const name of Object.keys(ENV) as EnvName[]) {
    const raw = source[name];
    const value = raw === undefined || raw.trim() === '' ? undefined : raw;
    const parsed = (ENV[name].schema as z.ZodType).safeParse(value);
    if (parsed.success) out[name] = parsed.data;
    else
      problems.push({ variable: name, message: describe(parsed.error, raw, credentialKind(name), ENV[name].schema) });
  }
  const env = out as Env;
  // A Lua script or MULTI may touch one Cluster slot only; the hash tag puts every key in one.
  if (problems.length === 0 && env.REDIS_CLUSTER && !HASH_TAG.test(env.QUEUE_PREFIX)) {
    problems.push({
      variable: 'QUEUE_PREFIX',
      message: `REDIS_CLUSTER=true needs a hash-tagged prefix like {research} (got ${JSON.stringify(env.QUEUE_PREFIX)})`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return env;
}

function describe(
  error: z.ZodError,
  raw: string | undefined,
  credential: 'url' | 'value' | undefined,
  schema: z.ZodType,
): string {
  const issue = error.issues[0];
  // zod's own range messages ("Too big: expected number to be <=256") give one bound in its
  // notation; a variable out of range is told the whole range. Checks with their own message keep it.
  const outOfRange =
    (issue?.code === 'too_big' || issue?.code === 'too_small') && /^Too (big|small)/.test(issue.message);
  const message = outOfRange ? (rangeOf(schema) ?? issue.message) : issue?.message;
  // A credential is never echoed (this message goes to the terminal and to logs); a URL is, stripped.
  const shown = raw === undefined || credential === 'value' ? undefined : credential === 'url' ? redactUrl(raw) : raw;
  const got =
    shown === undefined ? '' : ` (got ${JSON.stringify(shown.length > 60 ? `${shown.slice(0, 60)}…` : shown)})`;
  return `${message ?? 'invalid value'}${got}`;
}

/** "expected a whole number from 1 to 256" for a number schema (under its default or optional); undefined otherwise. */
function rangeOf(schema: z.ZodType): string | undefined {
  let inner: unknown = schema;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) inner = inner.unwrap();
  if (!(inner instanceof z.ZodNumber)) return undefined;
  const kind = inner.isInt ? 'a whole number' : 'a number';
  const { minValue: min, maxValue: max } = inner;
  const lowOk = min !== null && Number.isFinite(min) && min > Number.MIN_SAFE_INTEGER;
  const highOk = max !== null && Number.isFinite(max) && max < Number.MAX_SAFE_INTEGER;
  // `positive()` keeps 0 as an exclusive minimum: zod reports minValue 0 either way.
  const exclusiveLow = lowOk && !inner.safeParse(min).success;
  const low = exclusiveLow ? `above ${min}` : `${min}`;
  if (lowOk && highOk)
    return exclusiveLow ? `expected ${kind} ${low} and at most ${max}` : `expected ${kind} from ${min} to ${max}`;
  if (lowOk) return exclusiveLow ? `expected ${kind} above ${min}` : `expected ${kind} of at least ${min}`;
  if (highOk) return `expected ${kind} of at most ${max}`;
  return undefined;
}

function credentialKind(name: EnvName): 'url' | 'value' | undefined {
  const entry = ENV[name];
  return 'credential' in entry ? entry.credential : undefined;
}

/** Extra checks an app makes on top of the common parse (e.g. the API needs keys). */
export type Requirement = (env: Env) => { variable: string; message: string } | undefined;

export const requireLlmEndpoint: Requirement = (env) =>
  env.LLM_PROVIDER === 'openai' && !env.LLM_BASE_URL && !env.LLM_API_KEY
    ? { variable: 'LLM_BASE_URL', message: 'LLM_PROVIDER=openai needs LLM_BASE_URL or LLM_API_KEY' }
    : undefined;

export function loadConfig(requirements: Requirement[] = [], source?: Record<string, string | undefined>): Env {
  const env = loadEnv(source);
  const problems = requirements.map((r) => r(env)).filter((p) => p !== undefined);
  if (problems.length > 0) throw new ConfigError(problems);
  return env;
}

/** For `main.ts` files: parse or print the problem and exit 1 before anything starts. */
export function loadConfigOrExit(app: string, requirements: Requirement[] = []): Env {
  try {
    return loadConfig(requirements);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${app}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
