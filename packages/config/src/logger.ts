import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** pino level. Default: `info`. */
  level?: string;
  /** Pretty output; default: only when stdout is a TTY. */
  pretty?: boolean;
  /** Fields bound to every line (e.g. `{ app: 'worker', workerId }`). */
  base?: Record<string, unknown>;
}

/**
 * JSON logs by default (what log shippers want); pretty only on a TTY or when asked.
 * Children carry task id, step index and worker id: `log.child({ taskId, step })`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? Boolean(process.stdout.isTTY);
  return pino({
    level: options.level ?? 'info',
    base: options.base ?? {},
    redact: { paths: ['*.apiKey', '*.password', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  });
}
