import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type Redis, waitForRedis } from '../connection.js';
import { WEBHOOK_QUEUE } from '../names.js';
import { TaskStore } from '../task-store.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `{webhooks-${randomUUID().slice(0, 8)}}`;
let storeConnection: Redis;
let queueConnection: Redis;
let store: TaskStore;

beforeAll(async () => {
  storeConnection = createRedis(url, 'worker');
  queueConnection = createRedis(url, 'worker');
  await Promise.all([waitForRedis(storeConnection, url), waitForRedis(queueConnection, url)]);
  store = new TaskStore(storeConnection, prefix, { retentionSeconds: 60, queueConnection });
});

afterAll(async () => {
  await store?.close();
  const keys = await storeConnection.keys(`${prefix}*`);
  for (let i = 0; i < keys.length; i += 500) await storeConnection.del(...keys.slice(i, i + 500));
  await Promise.all([storeConnection.quit(), queueConnection.quit()]);
});

describe('webhook deliveries', () => {
  it("are queued on the queue connection: BullMQ's scripts stay off the store's, whose MULTIs would copy them", async () => {
    const id = `t-${randomUUID()}`;
    const webhook = JSON.stringify({ url: 'http://127.0.0.1:9/hook', events: ['progress'] });
    await store.webhooks.progress(id, webhook, { index: 1, action: 'execute-command', exitCode: 0 });

    const queue = new Queue(WEBHOOK_QUEUE, { connection: queueConnection, prefix });
    try {
      const job = await queue.getJob(`${id}-step-1`);
      expect(job?.data).toMatchObject({ taskId: id, deliveryId: `${id}-step-1`, event: 'progress' });
    } finally {
      await queue.close();
    }
    expect((await store.webhooks.list(id)).map((d) => d.status)).toEqual(['queued']);
    const bullmqScripts = Object.keys(queueConnection.scriptsSet);
    expect(bullmqScripts.length).toBeGreaterThan(10);
    expect(Object.keys(storeConnection.scriptsSet).filter((name) => bullmqScripts.includes(name))).toEqual([]);
  });
});
