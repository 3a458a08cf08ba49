import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { listen } from './http.js';

export interface TestServer {
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** Requests received, in order. */
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}

/**
 * An HTTP server on 127.0.0.1 that answers with `handler` once a request's body is in, and
 * keeps every request (a provider's or a webhook's other side, speaking its documented API).
 */
export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>,
): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const { port, url, close } = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      Promise.resolve(handler(req, res, body)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  return { port, origin: url, requests, close };
}

export interface CountingListener {
  readonly port: number;
  /** TCP connections accepted so far, on any of its addresses. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * A TCP listener on one port of 127.0.0.1 and, where the machine has it, of ::1, that counts
 * the connections it accepts (and closes them). A refusal is proven by this count staying 0.
 */
export async function countingListener(): Promise<CountingListener> {
  let count = 0;
  const onConnection = (socket: net.Socket): void => {
    count += 1;
    socket.destroy();
  };
  const v4 = net.createServer(onConnection);
  await new Promise<void>((resolve) => v4.listen(0, '127.0.0.1', resolve));
  const port = (v4.address() as net.AddressInfo).port;
  const v6 = net.createServer(onConnection);
  const servers = [v4];
  await new Promise<void>((resolve) => {
    v6.once('error', () => resolve());
    v6.listen(port, '::1', () => {
      servers.push(v6);
      resolve();
    });
  });
  return {
    port,
    connections: () => count,
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
