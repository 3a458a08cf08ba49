import net from 'node:net';
import type { Request, Response } from 'express';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Redis } from '@research/queue';
import { TooManyRequestsError } from './errors.js';

const MINUTE_S = 60;

/**
 * A per-minute counter shared by every API process through Redis, with an in-process twin that
 * takes over while Redis is unreachable (then each process counts alone; the requests that need
 * Redis answer 503 anyway).
 *
 * rate-limiter-flexible rather than express-rate-limit: the failed-login gate must count only
 * failures and be read without counting, before the key is even checked — express-rate-limit
 * counts every request up front and takes back the successful ones when they finish, so a burst
 * of valid requests (or a few open event streams, which finish only when they close) from one
 * address would lock out its right key. One library then serves both limits.
 */
function perMinute(redis: Redis, keyPrefix: string, points: number): RateLimiterRedis {
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix,
    points,
    duration: MINUTE_S,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration: MINUTE_S }),
  });
}

/**
 * The client's address as the limits count it: `req.ip` (which follows `TRUST_PROXY`), with an
 * IPv6 address cut to its /64, since one host usually holds a whole /64 and could otherwise
 * rotate through it.
 */
export function clientAddress(req: Request): string {
  const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (net.isIPv6(ip)) return `${expandIpv6(ip).slice(0, 4).join(':')}::/64`;
  return ip;
}

function expandIpv6(ip: string): string[] {
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0');
  return [...left, ...fill, ...right].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}

/**
 * Failed authentications per client address. Once an address has failed `limitPerMin` times in a
 * minute, every request from it gets 429 until that minute is over — the right key too, or a
 * guesser would learn which guess was right from the one answer that is not a 429. Other
 * addresses are not affected.
 *
 * The key is checked first (in memory); a wrong one is then counted atomically, so however many
 * guesses arrive at once, no more than the limit are ever answered 401; a right one is only
 * checked against the count, so a burst of valid requests from one address never counts.
 */
export class AuthFailureGate {
  private readonly limiter: RateLimiterRedis;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly limitPerMin: number,
  ) {
    this.limiter = perMinute(redis, `${prefix}:authfail`, limitPerMin);
  }

  /**
   * After a right key: throws 429 `too_many_auth_failures` while `address` is locked out. Every
   * authenticated request asks, so it first reads the count alone (one GET of the limiter's own
   * key, where the library reads it with its expiry in a MULTI of four commands); only an
   * address at the limit, or a store that failed (then the in-process count answers), goes on
   * to the library's read for the time left.
   */
  async check(address: string): Promise<void> {
    const failed = await this.redis.get(this.limiter.getKey(address)).then(Number, () => Number.NaN);
    if (failed < this.limitPerMin) return;
    const seen = await this.limiter.get(address).catch(() => null);
    if (seen !== null && seen.consumedPoints >= this.limitPerMin) throw this.refusal(seen);
  }

  /** After a wrong key: counts it, and throws 429 once the address is past the limit. */
  async recordFailure(address: string): Promise<void> {
    try {
      await this.limiter.consume(address);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw this.refusal(err);
      // The store failed and so did the insurance: answer the 401, uncounted.
    }
  }

  private refusal(seen: RateLimiterRes): TooManyRequestsError {
    const retryAfterS = Math.ceil(seen.msBeforeNext / 1000);
    return new TooManyRequestsError(
      'too_many_auth_failures',
      `too many failed authentications from this address (${this.limitPerMin} a minute); retry in ${retryAfterS} s`,
      retryAfterS,
    );
  }
}

/** Counts one request of a key; throws 429 `rate_limited` past the limit (see keyRateLimit). */
export type KeyRateLimit = (res: Response, keyId: string) => Promise<void>;

/**
 * `API_RATE_LIMIT_PER_MIN` requests per key per minute, counted after authentication (by the
 * key's public id, never the key). Answers carry `RateLimit-Limit`, `RateLimit-Remaining` and
 * `RateLimit-Reset`; past the limit 429 `rate_limited` with `Retry-After`. `bearerAuth` calls it
 * beside the address's lockout check, so both cost one round trip to Redis.
 */
export function keyRateLimit(redis: Redis, prefix: string, limitPerMin: number): KeyRateLimit | undefined {
  if (limitPerMin === 0) return undefined;
  const limiter = perMinute(redis, `${prefix}:ratelimit`, limitPerMin);
  return async (res, keyId) => {
    let outcome: RateLimiterRes;
    try {
      outcome = await limiter.consume(keyId);
    } catch (err) {
      // Anything but a refusal is a store failure that the insurance limiter could not cover: let it through.
      if (!(err instanceof RateLimiterRes)) return;
      outcome = err;
      setHeaders(res, limitPerMin, outcome);
      const retryAfterS = Math.ceil(outcome.msBeforeNext / 1000);
      throw new TooManyRequestsError(
        'rate_limited',
        `this API key made more than ${limitPerMin} requests this minute (API_RATE_LIMIT_PER_MIN); retry in ${retryAfterS} s`,
        retryAfterS,
        { limitPerMinute: limitPerMin },
      );
    }
    setHeaders(res, limitPerMin, outcome);
  };
}

function setHeaders(res: Response, limit: number, outcome: RateLimiterRes): void {
  res.set({
    'RateLimit-Limit': String(limit),
    'RateLimit-Remaining': String(Math.max(0, outcome.remainingPoints)),
    'RateLimit-Reset': String(Math.ceil(outcome.msBeforeNext / 1000)),
  });
}
