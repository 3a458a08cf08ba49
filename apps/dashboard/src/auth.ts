import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { type LoginFailureGate, clientAddress } from './login-limit.js';

export interface Login {
  user: string;
  password: string;
}

const REALM = 'research dashboard';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * HTTP basic auth in front of everything: the board's page, its static files and its JSON API.
 * Both sides are hashed first so the comparison is constant-time whatever the lengths, and user
 * and password are both compared before deciding, so a wrong user costs as much as a wrong
 * password. A request that presents a wrong login counts against its address in `gate`
 * (one without credentials is the browser asking for the challenge, and does not count).
 */
export function basicAuth(login: Login, gate: LoginFailureGate): RequestHandler {
  const expectedUser = digest(login.user);
  const expectedPassword = digest(login.password);
  return async (req, res, next) => {
    const given = parseBasic(req.headers.authorization);
    const userOk = timingSafeEqual(digest(given?.user ?? ''), expectedUser);
    const passwordOk = timingSafeEqual(digest(given?.password ?? ''), expectedPassword);
    const right = given !== undefined && userOk && passwordOk;
    const verdict = right
      ? await gate.check(clientAddress(req))
      : req.headers.authorization === undefined
        ? ({ locked: false } as const)
        : await gate.fail(clientAddress(req));
    if (verdict.locked) {
      res
        .status(429)
        .set('Retry-After', String(verdict.retryAfterS))
        .set('Cache-Control', 'no-store')
        .type('text/plain')
        .send(`too many failed logins from this address; retry in ${verdict.retryAfterS} s\n`);
      return;
    }
    if (right) {
      next();
      return;
    }
    res
      .status(401)
      .set('WWW-Authenticate', `Basic realm="${REALM}", charset="UTF-8"`)
      .set('Cache-Control', 'no-store')
      .type('text/plain')
      .send('login required\n');
  };
}

/** `Authorization: Basic base64(user:password)` → the pair, or undefined when absent or malformed. */
export function parseBasic(header: string | undefined): Login | undefined {
  if (!header) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
