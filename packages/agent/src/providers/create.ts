import type { Env } from '@research/config';
import type { AgentLogger } from '../logger.js';
import type { ModelProvider } from '../provider.js';
import { OfflineModel } from './offline.js';
import { OpenAIProvider } from './openai.js';

/** The provider LLM_PROVIDER selects, configured from the parsed environment. */
export function createProvider(
  env: Pick<Env, 'LLM_PROVIDER' | 'LLM_BASE_URL' | 'LLM_API_KEY' | 'LLM_MODEL' | 'LLM_TIMEOUT_MS' | 'LLM_MAX_RETRIES'> &
    Partial<Pick<Env, 'LLM_STREAM'>>,
  logger?: AgentLogger,
): ModelProvider {
  switch (env.LLM_PROVIDER) {
    case 'offline':
      return new OfflineModel();
    case 'openai':
      return new OpenAIProvider({
        ...(env.LLM_BASE_URL ? { baseURL: env.LLM_BASE_URL } : {}),
        ...(env.LLM_API_KEY ? { apiKey: env.LLM_API_KEY } : {}),
        model: env.LLM_MODEL,
        timeoutMs: env.LLM_TIMEOUT_MS,
        maxRetries: env.LLM_MAX_RETRIES,
        stream: env.LLM_STREAM ?? false,
        ...(logger ? { logger } : {}),
      });
  }
}
