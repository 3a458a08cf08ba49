import { createHash } from 'node:crypto';
import type { TaskRequest } from '@research/contracts';
import type { Redis } from '../connection.js';

/** How long an Idempotency-Key names its task. */
const IDEMPOTENCY_TTL_S = 86_400;

/** What a claim found: the key is new (the caller's task), or it names an earlier task. */
export interface IdempotencyClaim {
  /** The task the key names. */
  id: string;
  /** True when the key was free and now names the caller's task. */
  claimed: boolean;
  /** Whether the earlier request was the same as this one (always true for a fresh claim). */
  sameRequest: boolean;
}

/** The Redis key of an idempotency hash (package-internal: the queued quota's script names it too). */
export function idempotencyKey(prefix: string, hash: string): string {
  return `${prefix}:idem:${hash}`;
}

/** Idempotency keys (hashed by the API, per API key): each names one task for 24 h. */
export class Idempotency {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(hash: string): string {
    return idempotencyKey(this.prefix, hash);
  }

  /**
   * Makes `hash` name task `id` unless it already names another; the key remembers the request
   * it was first used with, so a reuse for another request is told apart.
   */
  async claim(hash: string, id: string, request: TaskRequest): Promise<IdempotencyClaim> {
    const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('hex').slice(0, 32);
    const key = this.key(hash);
    const ok = await this.redis.set(key, `${id}|${fingerprint}`, 'EX', IDEMPOTENCY_TTL_S, 'NX');
    if (ok === null) {
      const existing = await this.redis.get(key);
      if (existing) {
        const [existingId = existing, existingFingerprint] = existing.split('|');
        return {
          id: existingId,
          claimed: false,
          sameRequest: existingFingerprint === undefined || existingFingerprint === fingerprint,
        };
      }
    }
    return { id, claimed: true, sameRequest: true };
  }

  /** Forgets a key (used when enqueueing failed after the record was made). */
  async drop(hash: string): Promise<void> {
    await this.redis.del(this.key(hash));
  }
}
