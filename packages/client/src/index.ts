export { ResearchClient } from './client.js';
export type { ArchiveDownload, ListQuery, SubmitOptions, UsageQueryOptions } from './client.js';
export { DEFAULT_API_URL } from './transport.js';
export type { ClientOptions } from './transport.js';
export type { EventsOptions, StreamedEvent } from './events.js';
export {
  ResearchError,
  ApiError,
  InvalidRequestError,
  AuthenticationError,
  NotFoundError,
  ConflictError,
  RateLimitError,
  ConnectionError,
  TimeoutError,
  ProtocolError,
  socketErrorCode,
} from './errors.js';
