import { pino, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { REDACTED, credentialsIn, maskCredentials } from './redact.js';

export type { Logger };

/** Where finished log lines go (a stream or anything with `write`). */
export interface LogDestination {
  write(line: string): unknown;
}

export interface LoggerOptions {
  /** pino level. Default: `info`. */
  level?: string;
  /** Pretty output; default: only when stdout is a TTY. */
  pretty?: boolean;
  /** Fields bound to every line (e.g. `{ app: 'worker', workerId }`). */
  base?: Record<string, unknown>;
  /**
   * Literal credentials masked wherever they appear in a line (message, fields, error stacks).
   * Default: those of `process.env` ({@link credentialsIn}): the Redis password, the LLM key,
   * the dashboard password, the API keys, webhook secrets.
   */
  credentials?: readonly string[];
  /** Default: stdout (synchronous, so nothing is lost on `process.exit`). */
  destination?: LogDestination;
}

/** Fields that hold a credential whatever their value, wherever they sit (one level down too). */
const CREDENTIAL_FIELDS = ['apiKey', 'password', 'authorization', 'secret', 'token', 'LLM_API_KEY', 'WEBHOOK_SECRET'];

/**
 * JSON logs by default (what log shippers want); pretty only on a TTY or when asked.
 * Children carry task id, step index and worker id: `log.child({ taskId, step })`.
 *
 * Credentials never reach a line: pino's `redact` blanks credential fields, and every finished
 * line then passes one filter that strips URL userinfo (`redis://[redacted]@…`) and masks the
 * configured credentials by value — which also covers a URL or a key quoted inside an error
 * message of a library, where no field name could catch it.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY);
  const credentials = options.credentials ?? credentialsIn(process.env);
  const out = options.destination ?? pino.destination({ dest: 1, sync: true });
  const prettify = pretty
    ? prettyFactory({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' })
    : undefined;
  const destination: LogDestination = {
    write(line: string) {
      const masked = maskCredentials(line, credentials);
      return out.write(prettify ? prettify(masked) : masked);
    },
  };
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? {},
      redact: {
        paths: [
          ...CREDENTIAL_FIELDS,
          ...CREDENTIAL_FIELDS.map((f) => `*.${f}`),
          'headers.authorization',
          '*.headers.authorization',
        ],
        censor: REDACTED,
      },
    },
    destination,
  );
}
