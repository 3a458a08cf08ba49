import { afterAll, beforeAll } from 'vitest';
import { createRedis, waitForRedis, type Redis } from '@research/queue';
import { REDIS_URL, deletePrefix, listen } from '@research/testing';
import { createDashboard, type Dashboard, type DashboardDeps } from '../src/server.js';

/** A dashboard under test and what it runs on; filled in once `beforeAll` has run. */
export interface DashboardFixture {
  /** The connection the dashboard was given, for a test to put queues and workers under its prefix. */
  redis: Redis;
  dashboard: Dashboard;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  port: number;
}

/**
 * `createDashboard` over real Redis under `prefix`, listening on loopback, for one test file:
 * started in `beforeAll`; closed, its prefix's keys deleted and its connection quit in `afterAll`.
 */
export function useDashboard(prefix: string, options: Omit<DashboardDeps, 'connection' | 'prefix'>): DashboardFixture {
  const fixture = {} as DashboardFixture;
  let stop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const redis = createRedis(REDIS_URL, 'worker');
    fixture.redis = redis;
    await waitForRedis(redis, REDIS_URL);
    const dashboard = createDashboard({ connection: redis, prefix, ...options });
    fixture.dashboard = dashboard;
    const listening = await listen(dashboard.app);
    stop = listening.close;
    Object.assign(fixture, { base: listening.url, port: Number(new URL(listening.url).port) });
  });
  afterAll(async () => {
    await stop?.();
    await fixture.dashboard?.close();
    if (fixture.redis) {
      await deletePrefix(fixture.redis, prefix);
      await fixture.redis.quit();
    }
  });
  return fixture;
}
