export { ENV, envDefault } from './env.js';
export type { Env, EnvName } from './env.js';
export { ConfigError, loadEnv, loadConfig, loadConfigOrExit, requireApiKeys, requireLlmEndpoint } from './config.js';
export type { Requirement } from './config.js';
export { createLogger } from './logger.js';
export type { Logger, LoggerOptions } from './logger.js';
