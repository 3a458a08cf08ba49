export { EgressPolicy, systemResolver } from './policy.js';
export type { Destination, EgressPolicyOptions, Resolver } from './policy.js';
export { egressRequest } from './http.js';
export type { EgressRequestOptions, EgressResponse } from './http.js';
export { parseHostRule, parseHostRules, HostRuleError } from './rules.js';
export type { HostRule } from './rules.js';
export { addressRange } from './address.js';
export {
  WebError,
  EgressDeniedError,
  WebTimeoutError,
  HttpStatusError,
  UnsupportedContentError,
  SearchError,
  retryAfterMs,
} from './errors.js';
export type { EgressRule, SearchErrorCode } from './errors.js';
