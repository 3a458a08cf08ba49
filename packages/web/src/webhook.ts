import { Webhook } from 'standardwebhooks';
import { egressRequest } from './http.js';
import type { EgressPolicy } from './policy.js';
import { EgressDeniedError, WebError } from './errors.js';

/** One delivery attempt to make: the message, its id and where it goes. */
export interface WebhookMessage {
  url: string;
  /** `webhook-id`: the same on every attempt of one message, so a receiver can drop a repeat. */
  id: string;
  /** The JSON body, signed as it is sent. */
  payload: string;
}

export interface WebhookSendOptions {
  /** Time the receiver has to answer. Default: 10_000. */
  timeoutMs?: number;
  /** `webhook-timestamp` (the attempt's time, which receivers check against replays). Default: now. */
  now?: Date;
}

/** How one attempt went. `retryable` false: another attempt cannot help (refused by the egress policy). */
export type WebhookSendResult =
  | { ok: true; statusCode: number; durationMs: number }
  | {
      ok: false;
      statusCode?: number;
      error: { code: string; message: string };
      retryable: boolean;
      durationMs: number;
    };

/** Answer bytes read at most: only the status counts, the body is for the error message. */
const MAX_ANSWER_BYTES = 4_096;

/**
 * Sends webhook messages signed per the Standard Webhooks specification (`webhook-id`,
 * `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`), with
 * the specification's own library (`standardwebhooks`), so the signature is what its verifiers
 * in every language check. Every attempt goes through the egress policy like any other outbound
 * request: a refused destination opens no connection. Redirects are not followed (the
 * specification: a 3xx is a failure), so a receiver cannot bounce a signed body elsewhere.
 */
export class WebhookSender {
  readonly #signer: Webhook;

  /** `secret`: WEBHOOK_SECRET, `whsec_` and the base64 key. */
  constructor(
    secret: string,
    private readonly policy: EgressPolicy,
  ) {
    this.#signer = new Webhook(secret.startsWith('whsec_') ? secret.slice(6) : secret);
  }

  /** The three signature headers of `message` at `now`. */
  headers(message: Pick<WebhookMessage, 'id' | 'payload'>, now = new Date()): Record<string, string> {
    return {
      'webhook-id': message.id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': this.#signer.sign(message.id, now, message.payload),
    };
  }

  async send(message: WebhookMessage, options: WebhookSendOptions = {}): Promise<WebhookSendResult> {
    const started = performance.now();
    const took = () => Math.round(performance.now() - started);
    try {
      const res = await egressRequest(this.policy, message.url, {
        method: 'POST',
        headers: {
          ...this.headers(message, options.now),
          'content-type': 'application/json',
          'user-agent': 'research-jobs-webhooks/1',
        },
        body: message.payload,
        maxRedirects: 0,
        maxBytes: MAX_ANSWER_BYTES,
        timeoutMs: options.timeoutMs ?? 10_000,
      });
      if (res.status >= 200 && res.status < 300) return { ok: true, statusCode: res.status, durationMs: took() };
      const text = res.body.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
      return {
        ok: false,
        statusCode: res.status,
        error: { code: 'http_error', message: `the receiver answered ${res.status}${text ? `: ${text}` : ''}` },
        // A 3xx is not followed, and following it on the next attempt would not happen either;
        // 4xx may be a receiver that is being fixed: within the attempts, another try is cheap.
        retryable: true,
        durationMs: took(),
      };
    } catch (err) {
      if (err instanceof EgressDeniedError)
        return { ok: false, error: { code: err.code, message: err.message }, retryable: false, durationMs: took() };
      if (err instanceof WebError)
        return {
          ok: false,
          error: { code: err.code, message: err.message },
          retryable: err.retryable || err.code === 'dns_failed',
          durationMs: took(),
        };
      throw err;
    }
  }
}
