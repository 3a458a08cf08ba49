import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { OTHER_KEY, playFinish, playStep, useApi } from '../test/api.js';
import { ConflictError, InvalidRequestError, NotFoundError, ResearchClient, type ArchiveDownload } from './index.js';

const api = useApi('clientops');

async function finished(prompt: string, tags: string[] = []): Promise<string> {
  const { id } = await api.client.submit({ prompt, tags });
  await api.store.lifecycle.start(id, { workerId: 'worker-client' });
  await playStep(api.store, id, 0, 'python3 analysis.py');
  await playFinish(api.store, id);
  return id;
}

/** The archive's entries, path → content. */
async function entries(archive: ArchiveDownload): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      out.set(header.name, Buffer.concat(chunks).toString('utf8'));
      next();
    });
  });
  await pipeline(Readable.fromWeb(archive.body as unknown as WebReadableStream<Uint8Array>), createGunzip(), extract);
  return out;
}

describe('ResearchClient: listing, batches, archives, deletion, usage', () => {
  it('lists by tag and status, newest first, page by page', async () => {
    const tag = `run-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await api.client.submit({ prompt: `listed ${i}`, tags: [tag] })).id);
    await api.client.submit({ prompt: 'not tagged' });
    await api.client.cancel(ids[1]!);

    const first = await api.client.list({ tag, limit: 2 });
    expect(first.items.map((t) => t.id)).toEqual([ids[2], ids[1]]);
    expect(first.items[0]).toMatchObject({ status: 'queued', tags: [tag], promptPreview: 'listed 2', tenant: 'acme' });
    expect(first.nextCursor).not.toBeNull();
    const second = await api.client.list({ tag, limit: 2, cursor: first.nextCursor! });
    expect(second).toEqual({ items: [expect.objectContaining({ id: ids[0] })], nextCursor: null });

    const all: string[] = [];
    for await (const item of api.client.listAll({ tag, limit: 1 })) all.push(item.id);
    expect(all).toEqual([ids[2], ids[1], ids[0]]);
    expect((await api.client.list({ tag, status: 'cancelled' })).items.map((t) => t.id)).toEqual([ids[1]]);

    const beta = new ResearchClient({ baseUrl: api.url, apiKey: OTHER_KEY });
    expect((await beta.list({ tag })).items).toEqual([]);
    await expect(api.client.list({ limit: 101 })).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it('submits a batch: one result per item in order, an invalid item refused alone', async () => {
    const result = await api.client.batch([
      { prompt: 'batch one', idempotencyKey: 'client-batch-1' },
      { prompt: '' },
      { prompt: 'batch three', tags: ['batched'] },
    ]);
    expect(result.accepted).toBe(2);
    expect(result.refused).toBe(1);
    const [one, two, three] = result.results;
    expect(one).toHaveProperty('id');
    expect(two).toMatchObject({ error: { code: 'invalid_request' } });
    expect(three).toHaveProperty('id');
    expect(await api.client.get((three as { id: string }).id)).toMatchObject({ prompt: 'batch three' });
    // The item's own idempotency key: resending the batch names the same task.
    const again = await api.client.batch([{ prompt: 'batch one', idempotencyKey: 'client-batch-1' }]);
    expect(again.results[0]).toEqual({ id: (one as { id: string }).id });
  });

  it('downloads the archive of the kept files', async () => {
    const id = await finished('archive me');
    const archive = await api.client.archive(id);
    expect(archive).toMatchObject({ filename: `research-${id}.tar.gz`, files: 1, omittedFiles: 0 });
    expect(await entries(archive)).toEqual(new Map([[`research-${id}/report.md`, '# Report\n\nMarkets are up.\n']]));
    await expect(api.client.archive('no-such-task')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('deletes a final task, which then answers 404 everywhere; a running one is a 409 naming cancel', async () => {
    const id = await finished('delete me');
    await api.client.delete(id);
    const attempts = await Promise.allSettled([
      api.client.get(id),
      api.client.files(id),
      api.client.file(id, 'report.md'),
      api.client.archive(id),
      api.client.delete(id),
      (async () => {
        for await (const _ of api.client.events(id)) {
          // nothing may arrive
        }
      })(),
    ]);
    for (const attempt of attempts) {
      expect(attempt.status).toBe('rejected');
      expect((attempt as PromiseRejectedResult).reason).toBeInstanceOf(NotFoundError);
    }

    const { id: running } = await api.client.submit({ prompt: 'still running' });
    await api.store.lifecycle.start(running, { workerId: 'worker-client' });
    const refused = await api.client.delete(running).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as ConflictError).message).toContain('cancel');
    expect((await api.client.get(running)).status).toBe('running');
  });

  it("reads a task's webhook deliveries (none without a webhook), and 404 for an unknown task", async () => {
    const { id } = await api.client.submit({ prompt: 'no webhook' });
    expect(await api.client.webhooks(id)).toEqual({ deliveries: [] });
    await expect(api.client.webhooks('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError);
  });

  it("reads the tenant's usage over a range of days", async () => {
    const today = new Date().toISOString().slice(0, 10);
    const report = await api.client.usage({ from: today, to: today });
    expect(report).toMatchObject({ tenant: 'acme', from: today, to: today });
    expect(report.days.map((d) => d.date)).toEqual([today]);
    expect(Object.keys(report.usage).sort()).toEqual(
      ['commandMs', 'completionTokens', 'fetchedBytes', 'modelCalls', 'promptTokens', 'steps'].sort(),
    );
    await expect(api.client.usage({ from: today, to: '2000-01-01' })).rejects.toBeInstanceOf(InvalidRequestError);
  });
});
