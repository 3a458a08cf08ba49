/**
 * TEST HELPER ONLY — not compiled into dist. A real HTTP server on 127.0.0.1 standing in for a
 * chat-completions API (node:http, no mocks of the SDK or of fetch).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Answers each request once its body is in; `start()` listens and gives the `/v1` base URL. */
export abstract class LoopbackEndpoint {
  readonly #server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => this.answer(req, res, raw));
  });

  protected abstract answer(req: http.IncomingMessage, res: http.ServerResponse, body: string): void;

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
