import type { Context, Next } from 'koa';
import type { Principal } from '../access.js';
import type { AppDeps } from '../deps.js';
import { createRevocationCheck, type RevocationCheck } from './revocation.js';
import { AuthFailure, type VerifiedToken } from './tokens.js';

export const SESSION_COOKIE = 'cairn_session';
export const CSRF_COOKIE = 'cairn_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** Who the credentials say is asking, and how they said it. */
export interface Identity {
  principal: Principal;
  via: 'bearer' | 'cookie' | 'off';
  /** The login session the credential belongs to. */
  sid?: string;
  /** The bearer token's id. */
  jti?: string;
}

/** With AUTH=off (local experiments only) every caller is this administrator, still without clearances. */
export const ANONYMOUS_ADMIN: Principal = Object.freeze({ sub: 'anonymous', roles: Object.freeze(['admin'] as const), clearances: Object.freeze([]) });

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Reads the credentials of every request (a bearer JWT, or the login page's
 * session cookie holding the same kind of JWT) into ctx.state.identity, or
 * the reason they were refused into ctx.state.authFailure. It never answers
 * by itself: the route guard (http/guard.ts) decides, and audits, per route.
 */
export function authenticate(deps: AppDeps) {
  const revocation = createRevocationCheck(deps.db, deps.config.auth.revocationCheckSeconds);
  return async (ctx: Context, next: Next): Promise<void> => {
    ctx.state.revocation = revocation;
    if (!deps.config.auth.enabled) {
      ctx.state.identity = { principal: ANONYMOUS_ADMIN, via: 'off' } satisfies Identity;
      ctx.append('Warning', '299 cairn "authentication is off (AUTH=off): every caller acts as an administrator"');
      return next();
    }
    try {
      ctx.state.identity = await identify(deps, revocation, ctx);
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      ctx.state.authFailure = err;
    }
    return next();
  };
}

async function identify(deps: AppDeps, revocation: RevocationCheck, ctx: Context): Promise<Identity | undefined> {
  // RFC 6750 §2.3 allows a token in the URI but advises against it: URLs end
  // up in logs, histories and Referer headers. Cairn refuses it outright.
  if (ctx.query.access_token !== undefined)
    throw new AuthFailure('invalid_request', 'a token in the query string is refused; send it in the Authorization header');
  const header = ctx.get('authorization');
  if (header) {
    // Another scheme is a malformed request (400); after "Bearer", whatever
    // stands there is the token, and a bad one is an invalid_token (401).
    const m = /^(\S+)(?:\s+(.*))?$/s.exec(header.trim());
    if (m?.[1].toLowerCase() !== 'bearer') throw new AuthFailure('invalid_request', 'the Authorization header must be "Bearer <token>"');
    const token = m[2] ?? '';
    if (token === '') throw new AuthFailure('invalid_token', 'the Authorization header holds no token after "Bearer"');
    const verified = await deps.tokens.verify(token);
    // A session's JWT sent as a bearer token is still that session, ended when it ends.
    if (verified.sid) return { principal: await openSession(revocation, verified.sid), via: 'bearer', sid: verified.sid };
    if (verified.jti && (await revocation.tokenRevoked(verified.jti))) throw new AuthFailure('invalid_token', 'the token has been revoked');
    return { principal: verified.principal, via: 'bearer', jti: verified.jti };
  }
  const cookie = ctx.cookies.get(SESSION_COOKIE);
  if (!cookie) return undefined;
  const { sid, csrf }: VerifiedToken = await deps.tokens.verify(cookie);
  if (!sid) throw new AuthFailure('invalid_token', 'the session cookie names no session; log in again');
  const principal = await openSession(revocation, sid);
  // A cookie is sent by the browser on its own, so a request that changes
  // state must also prove it came from Cairn's own pages: the CSRF token of
  // the session, which only those pages can read (from the cairn_csrf cookie).
  if (UNSAFE.has(ctx.method) && (!csrf || ctx.get(CSRF_HEADER) !== csrf)) ctx.state.csrfFailure = true;
  return { principal, via: 'cookie', sid };
}

/**
 * The account of an open session, as it is now: logging out, removing the
 * account or changing its roles or clearances ends the session (see the
 * sessions migration), on this app at once and on every replica within
 * AUTH_REVOCATION_CHECK_SECONDS.
 */
async function openSession(revocation: RevocationCheck, sid: string): Promise<Principal> {
  const principal = await revocation.session(sid);
  if (!principal) throw new AuthFailure('invalid_token', 'the session has ended (logged out, revoked or expired); log in again');
  return principal;
}
