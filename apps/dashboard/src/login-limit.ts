import net from 'node:net';
import type { Request } from 'express';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Redis } from '@research/queue';

/** What the gate says about a request's address. */
export type Verdict = { locked: false } | { locked: true; retryAfterS: number };

/**
 * Failed logins per client address, shared through Redis by every dashboard process (an
 * in-process count takes over while Redis is away). Past `limitPerMin` failures in a minute,
 * every request from that address is refused until the minute is over — the right password
 * too, or a guesser would tell a right guess by its answer. Wrong passwords are counted
 * atomically, so a burst of guesses cannot slip past the limit; right ones are only checked.
 * (The API has the same gate for bearer keys, in `apps/api/src/limits.ts`.)
 */
export class LoginFailureGate {
  private readonly limiter: RateLimiterRedis;

  constructor(
    redis: Redis,
    prefix: string,
    private readonly limitPerMin: number,
  ) {
    const keyPrefix = `${prefix}:dashboard-authfail`;
    this.limiter = new RateLimiterRedis({
      storeClient: redis,
      keyPrefix,
      points: limitPerMin,
      duration: 60,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ keyPrefix, points: limitPerMin, duration: 60 }),
    });
  }

  /** After a right login. */
  async check(address: string): Promise<Verdict> {
    const seen = await this.limiter.get(address).catch(() => null);
    return seen !== null && seen.consumedPoints >= this.limitPerMin ? locked(seen) : { locked: false };
  }

  /** After a wrong login: counts it. */
  async fail(address: string): Promise<Verdict> {
    try {
      await this.limiter.consume(address);
      return { locked: false };
    } catch (err) {
      return err instanceof RateLimiterRes ? locked(err) : { locked: false };
    }
  }
}

const locked = (seen: RateLimiterRes): Verdict => ({
  locked: true,
  retryAfterS: Math.max(1, Math.ceil(seen.msBeforeNext / 1000)),
});

/** `req.ip` (after `trust proxy`), IPv4-mapped addresses unwrapped, IPv6 cut to its /64. */
export function clientAddress(req: Request): string {
  const ip = req.ip ?? req.socket.remoteAddress ?? 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (!net.isIPv6(ip)) return ip;
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0');
  const groups = [...left, ...fill, ...right].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
  return `${groups.slice(0, 4).join(':')}::/64`;
}
