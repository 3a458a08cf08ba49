/**
 * A model endpoint for the `llm` part: a real HTTP server on loopback speaking the OpenAI
 * chat-completions API, run as a process of its own so its CPU is measured apart from the
 * bench's. It answers each turn after a latency drawn uniformly from L ± jitter (like a hosted
 * model answering a tool call) and plays one task script per conversation: the call for turn
 * n is the n-th step of {@link STEP_MIX}, then a final answer. The turn is read from the
 * conversation itself (how many assistant messages it holds), so the server keeps no state and
 * a resumed task gets the right next call.
 *
 * Environment: `PORT` (required), `MODEL_LATENCY_MS` [2000], `MODEL_JITTER` [0.25] (fraction of L).
 */
import http from 'node:http';
import { block } from '@research/testing';
import { STEP_MIX } from './script.js';

const FINAL = 'Research complete. The report is in report.md.';

interface ChatRequest {
  model?: string;
  messages?: { role: string; content?: unknown }[];
  tools?: unknown[];
}

/** The body of the n-th turn's answer, in the format the request asks for (tools given → native calls). */
function answer(request: ChatRequest, turn: number): Record<string, unknown> {
  const step = STEP_MIX[turn];
  const native = Array.isArray(request.tools) && request.tools.length > 0;
  let message: Record<string, unknown>;
  if (!step) message = { role: 'assistant', content: FINAL };
  else if (native)
    message = {
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          id: `call_${turn}`,
          type: 'function',
          function: { name: 'daytona-execute', arguments: JSON.stringify(step) },
        },
      ],
    };
  else message = { role: 'assistant', content: `Next step.\n${block(step)}` };
  return {
    id: `chatcmpl-bench-${turn}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1_000),
    model: request.model ?? 'bench-model',
    choices: [{ index: 0, message, finish_reason: step ? (native ? 'tool_calls' : 'stop') : 'stop' }],
    usage: { prompt_tokens: 500 + 100 * turn, completion_tokens: 60, total_tokens: 560 + 100 * turn },
  };
}

function main(): void {
  const port = Number(process.env.PORT);
  const latencyMs = Number(process.env.MODEL_LATENCY_MS ?? 2_000);
  const jitter = Number(process.env.MODEL_JITTER ?? 0.25);
  if (!Number.isInteger(port) || port <= 0) throw new Error('PORT is required');
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let request: ChatRequest;
      try {
        request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequest;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad json"}}');
        return;
      }
      const turn = (request.messages ?? []).filter((m) => m.role === 'assistant').length;
      const body = JSON.stringify(answer(request, turn));
      const delay = latencyMs * (1 + jitter * (2 * Math.random() - 1));
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      }, delay);
    });
  });
  // Thousands of tasks keep connections open between turns L apart: keep them longer than L.
  server.keepAliveTimeout = Math.max(5_000, latencyMs * 3);
  server.headersTimeout = server.keepAliveTimeout + 1_000;
  server.maxRequestsPerSocket = 0;
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

main();
