export { EgressPolicy, systemResolver } from './policy.js';
export type { Destination, EgressPolicyOptions, Resolver } from './policy.js';
export { egressRequest } from './http.js';
export type { EgressRequestOptions, EgressResponse } from './http.js';
export { parseHostRule, parseHostRules, HostRuleError } from './rules.js';
export type { HostRule } from './rules.js';
export { addressRange } from './address.js';
export { MemoryCounter, TaskWebBudget } from './budget.js';
export type { BudgetCounter, TaskWebBudgetLimits } from './budget.js';
export { fetchPage, slugify } from './fetch.js';
export type { FetchPageOptions, FetchedPage, SourceMeta } from './fetch.js';
export { htmlToMarkdown, pdfToText, contentKind } from './convert.js';
export type { Conversion, ContentKind } from './convert.js';
export { createSearchProvider, requireWebSearch } from './search/create.js';
export type { SearchEnv } from './search/create.js';
export type { SearchProvider, SearchOptions, ProviderOptions } from './search/provider.js';
export { SearxngProvider } from './search/searxng.js';
export { TavilyProvider, TAVILY_URL } from './search/tavily.js';
export { BraveProvider, BRAVE_URL } from './search/brave.js';
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
export { WebhookSender } from './webhook.js';
export type { WebhookMessage, WebhookSendOptions, WebhookSendResult } from './webhook.js';
