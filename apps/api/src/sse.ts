import type { Response } from 'express';

/** Open SSE streams of one app, so a graceful shutdown can end them instead of waiting for clients. */
export class SseStreams {
  private readonly closers = new Set<() => void>();

  /** Registers a stream's closer; returns the function that unregisters it. */
  add(close: () => void): () => void {
    this.closers.add(close);
    return () => this.closers.delete(close);
  }

  get size(): number {
    return this.closers.size;
  }

  closeAll(): void {
    for (const close of [...this.closers]) close();
    this.closers.clear();
  }
}

/** One SSE message. `data` is a single line of JSON, so no escaping of newlines is needed. */
export function formatEvent(id: string, event: string, data: unknown): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Writes and waits for the socket to drain when the client reads slower than we send. */
export async function write(res: Response, chunk: string): Promise<void> {
  if (res.writableEnded || res.destroyed) return;
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
