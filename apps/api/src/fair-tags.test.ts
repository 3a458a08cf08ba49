import { describe, expect, it } from 'vitest';
import { fairTagOf } from '@research/queue';
import { call } from '@research/testing';
import { AUTH, useApi } from '../test/api.js';

const api = useApi();

/** The fair-share tag inside each task's BullMQ priority, in the order of `ids`. */
async function tagsOf(ids: string[]): Promise<number[]> {
  const jobs = await Promise.all(ids.map((id) => api.queue.getJob(id)));
  return jobs.map((job, i) => {
    if (!job) throw new Error(`no job for task ${ids[i]}`);
    return fairTagOf(job.opts.priority ?? 0);
  });
}

describe('fair-share tags at submit', () => {
  it('gives a batch consecutive tags in its order, and an idempotent repeat none', async () => {
    const key = `tags-${Date.now()}`;
    const first = await call(api.url, 'POST', '/v1/jobs', {
      headers: { ...AUTH, 'idempotency-key': key },
      body: { prompt: 'first' },
    });
    expect(first.status).toBe(202);
    const firstId = (first.json as { id: string }).id;

    // The same key again: the same task, and no tag taken for it.
    const repeat = await call(api.url, 'POST', '/v1/jobs', {
      headers: { ...AUTH, 'idempotency-key': key },
      body: { prompt: 'first' },
    });
    expect(repeat.status).toBe(202);
    expect((repeat.json as { id: string }).id).toBe(firstId);

    const batch = await call(api.url, 'POST', '/v1/jobs/batch', {
      headers: AUTH,
      body: { tasks: Array.from({ length: 6 }, (_, i) => ({ prompt: `batch ${i}` })) },
    });
    expect(batch.status).toBe(200);
    const ids = (batch.json as { results: { id: string }[] }).results.map((r) => r.id);
    expect(ids).toHaveLength(6);

    const [firstTag, ...batchTags] = await tagsOf([firstId, ...ids]);
    expect(batchTags).toEqual(Array.from({ length: 6 }, (_, i) => firstTag! + 1 + i));
  });
});
