export { ENV, envDefault } from './env.js';
export type { Env, EnvName } from './env.js';
export { ConfigError, loadEnv, loadConfig, loadConfigOrExit, requireLlmEndpoint } from './config.js';
export type { Requirement } from './config.js';
export {
  DEFAULT_TENANT,
  MIN_API_KEY_LENGTH,
  TENANT_PATTERN,
  loadApiKeys,
  requireApiKeys,
  sha256,
} from './api-keys.js';
export type { ApiKey } from './api-keys.js';
export { createLogger } from './logger.js';
export type { Logger, LoggerOptions, LogDestination } from './logger.js';
export { REDACTED, credentialsIn, maskCredentials, redactUrl } from './redact.js';
