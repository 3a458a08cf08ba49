import { afterAll, beforeAll } from 'vitest';
import type { TaskStore } from '@research/queue';
import {
  cleanPrefix,
  playStep as play,
  startBuiltApi,
  testPrefix,
  type PlayStepOptions,
  type RunningApi,
} from '@research/testing';
import { ResearchClient } from '../src/index.js';
// apps/api has no `exports` map; its built entry is the stable way in.
import { createApi } from '@research/api/dist/index.js';

export const KEY = 'client-test-key-0123456789';
export const OTHER_KEY = 'other-tenant-key-0123456789';

/** The real API for one test file and a client of tenant `acme`; filled in once `beforeAll` has run. */
export interface ApiFixture extends RunningApi {
  /** With {@link KEY}: tenant `acme`. */
  client: ResearchClient;
}

/**
 * The real API (`createApi`) over real Redis on loopback for one test file, under a prefix of its
 * own (`testPrefix(name)`): tenant `acme` with {@link KEY}, `beta` with {@link OTHER_KEY}. Started
 * in `beforeAll`; closed and its keys deleted in `afterAll`.
 */
export function useApi(name: string): ApiFixture {
  const api = {} as ApiFixture;
  const prefix = testPrefix(name);
  beforeAll(async () => {
    const started = await startBuiltApi(createApi, { prefix, apiKeys: [`acme:${KEY}`, `beta:${OTHER_KEY}`] });
    Object.assign(api, started, { client: new ResearchClient({ baseUrl: started.url, apiKey: KEY }) });
  });
  afterAll(async () => {
    await api.close?.();
    await cleanPrefix(prefix);
  });
  return api;
}

const now = () => new Date().toISOString();

/** Plays the worker for one `execute-command` step (a budget of 5 steps, no turn event). */
export function playStep(store: TaskStore, id: string, index: number, command: string): Promise<void> {
  const options: PlayStepOptions = { maxSteps: 5, turn: false };
  return play(store, id, index, command, options);
}

/** Plays the worker's end: `report.md` kept, `finished`, then the final status. */
export async function playFinish(
  store: TaskStore,
  id: string,
  report = '# Report\n\nMarkets are up.\n',
): Promise<void> {
  const content = Buffer.from(report);
  await store.files.save(id, [{ path: 'report.md', size: content.length, content }]);
  await store.events.append(id, { type: 'finished', at: now(), summary: 'done', reason: 'answer' });
  await store.lifecycle.transition(id, 'completed', {
    result: { summary: 'done', files: [{ path: 'report.md', size: content.length }] },
  });
}
