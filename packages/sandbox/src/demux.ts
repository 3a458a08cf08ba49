/**
 * Parser of Docker's multiplexed attach stream (Tty: false): frames of an 8-byte header
 * `[stream, 0, 0, 0, size:uint32be]` followed by `size` bytes, stream 1 = stdout, 2 = stderr.
 * Own parser rather than docker-modem's demuxStream: no PassThrough streams per exec, and chunks
 * reach the consumer in the same tick, which matters for the runner's round-trip time.
 */
export class DockerDemuxer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly onFrame: (stream: 1 | 2, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.pendingBytes < 8) return;
      const head = this.peek(8);
      const size = head.readUInt32BE(4);
      if (this.pendingBytes < 8 + size) return;
      const frame = this.take(8 + size);
      const stream = head[0] === 2 ? 2 : 1;
      this.onFrame(stream, frame.subarray(8));
    }
  }

  private peek(n: number): Buffer {
    const first = this.pending[0]!;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.pending);
    this.pending = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const joined = this.peek(n);
    const out = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes -= n;
    return out;
  }
}

/** Splits a byte stream into lines (without the `\n`), keeping partial lines across chunks. */
export class LineSplitter {
  private partial: Buffer[] = [];

  constructor(private readonly onLine: (line: Buffer) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      if (this.partial.length > 0) {
        this.partial.push(piece);
        const line = Buffer.concat(this.partial);
        this.partial = [];
        this.onLine(line);
      } else {
        this.onLine(piece);
      }
      start = nl + 1;
    }
    if (start < chunk.length) this.partial.push(chunk.subarray(start));
  }
}
