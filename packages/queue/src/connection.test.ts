import { type Cluster, Redis as Standalone } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { API_COMMAND_TIMEOUT_MS, createRedis, duplicateRedis, isCluster } from './connection.js';
// The store's scripts, made at import as in any process that uses the store.
import './task-store.js';

// Nothing here connects (lazyConnect): these check what each role asks of ioredis.
describe('createRedis', () => {
  it('opens a single-endpoint connection unless told the URL is a Cluster seed', () => {
    const redis = createRedis('redis://127.0.0.1:6390', 'api', { lazyConnect: true });
    expect(redis).toBeInstanceOf(Standalone);
    expect(isCluster(redis)).toBe(false);
    expect(redis.options).toMatchObject({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: API_COMMAND_TIMEOUT_MS,
    });
    redis.disconnect();
  });

  it('in cluster mode keeps the roles: a worker waits through outages, the API fails fast', () => {
    const worker = createRedis('redis://127.0.0.1:6390', 'worker', { cluster: true, lazyConnect: true });
    const api = createRedis('redis://:s3cret@127.0.0.1:6391', 'api', { cluster: true, lazyConnect: true });
    const sse = duplicateRedis(api, { commandTimeout: 15_000 });
    try {
      for (const c of [worker, api, sse]) expect(isCluster(c)).toBe(true);
      expect((worker as Cluster).options).toMatchObject({
        enableOfflineQueue: true,
        redisOptions: { maxRetriesPerRequest: null, connectionName: 'research-worker' },
      });
      // Every node gets the seed's password, not only the seed.
      expect((api as Cluster).options).toMatchObject({
        enableOfflineQueue: false,
        redisOptions: { maxRetriesPerRequest: 1, commandTimeout: API_COMMAND_TIMEOUT_MS, password: 's3cret' },
      });
      // A duplicate keeps the role; overrides go to its node connections.
      expect((sse as Cluster).options).toMatchObject({
        enableOfflineQueue: false,
        redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 15_000, password: 's3cret' },
      });
    } finally {
      for (const c of [worker, api, sse]) c.disconnect();
    }
  });

  it('batches calls only where asked, with every Lua script defined first; duplicates never batch', () => {
    const single = createRedis('redis://127.0.0.1:6390', 'worker', { autoPipelining: true, lazyConnect: true });
    const cluster = createRedis('redis://127.0.0.1:6390', 'worker', {
      cluster: true,
      autoPipelining: true,
      lazyConnect: true,
    });
    const plain = createRedis('redis://127.0.0.1:6390', 'worker', { lazyConnect: true });
    const copies = [duplicateRedis(single), duplicateRedis(cluster)];
    try {
      expect(single.options.enableAutoPipelining).toBe(true);
      // On a Cluster it is the Cluster's option, not its nodes'.
      expect((cluster as Cluster).options.enableAutoPipelining).toBe(true);
      expect(plain.options.enableAutoPipelining).toBe(false);
      for (const c of copies) expect(c.options.enableAutoPipelining).toBe(false);
      // A batch takes the commands its connection has when it begins: the scripts are there already.
      for (const c of [single, cluster]) expect('researchCompleteStep' in c).toBe(true);
      expect('researchCompleteStep' in plain).toBe(false);
    } finally {
      for (const c of [single, cluster, plain, ...copies]) c.disconnect();
    }
  });

  it('refuses a database number for a Cluster (it has only 0)', () => {
    expect(() => createRedis('redis://127.0.0.1:6390/2', 'worker', { cluster: true, lazyConnect: true })).toThrow(
      /only database 0/,
    );
  });
});
