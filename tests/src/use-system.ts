import { afterAll, beforeAll } from 'vitest';
import { System, requireServices, type SystemOptions } from '@research/testing';

/**
 * The system for one test file: made at once (so the file knows its ids and prefix while it sets
 * up), started by `start` in `beforeAll` once Redis and Docker answer, and closed in `afterAll`,
 * which removes every process, container, volume and key it made.
 */
export function useSystem(start: (sys: System) => Promise<void>, options?: SystemOptions): System {
  const sys = new System(options);
  beforeAll(async () => {
    await requireServices();
    await start(sys);
  });
  afterAll(() => sys.close());
  return sys;
}
