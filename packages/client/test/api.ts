import { waitForRedis, type TaskStore } from '@research/queue';
import { playStep as play, startInProcessApi, type PlayStepOptions } from '@research/testing';
// apps/api has no `exports` map; its built entry is the stable way in.
import { createApi } from '@research/api/dist/index.js';

export const KEY = 'client-test-key-0123456789';
export const OTHER_KEY = 'other-tenant-key-0123456789';

export interface RunningApi {
  url: string;
  port: number;
  store: TaskStore;
  close(options?: { abrupt?: boolean }): Promise<void>;
}

/** The real API (`createApi`) over real Redis on loopback: tenant `acme` with {@link KEY}, `beta` with {@link OTHER_KEY}. */
export async function startApi(prefix: string, port = 0, env: Record<string, string> = {}): Promise<RunningApi> {
  const started = await startInProcessApi(
    async (apiEnv) => {
      const api = createApi(apiEnv);
      await waitForRedis(api.deps.redis, apiEnv.REDIS_URL, 3_000);
      return api;
    },
    { prefix, apiKeys: [`acme:${KEY}`, `beta:${OTHER_KEY}`], port, env },
  );
  return { url: started.url, port: started.port, store: started.api.deps.store, close: started.close };
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
