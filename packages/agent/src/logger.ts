type LogFn = (obj: object | string, msg?: string) => void;

/**
 * The slice of a pino `Logger` the agent uses, so `@research/config`'s logger fits as is and
 * tests can pass a recording fake.
 */
export interface AgentLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const noop: LogFn = () => {};
export const silentLogger: AgentLogger = { debug: noop, info: noop, warn: noop, error: noop };
