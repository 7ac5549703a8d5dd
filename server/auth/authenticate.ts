import type { Context, Next } from 'koa';
import { toRoles, type Principal } from '../access.js';
import { findUser } from '../db/users.js';
import type { AppDeps } from '../deps.js';
import { AuthFailure } from './tokens.js';

export const SESSION_COOKIE = 'cairn_session';
export const CSRF_COOKIE = 'cairn_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** Who the credentials say is asking, and how they said it. */
export interface Identity {
  principal: Principal;
  via: 'bearer' | 'cookie' | 'off';
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
  return async (ctx: Context, next: Next): Promise<void> => {
    if (!deps.config.auth.enabled) {
      ctx.state.identity = { principal: ANONYMOUS_ADMIN, via: 'off' } satisfies Identity;
      ctx.append('Warning', '299 cairn "authentication is off (AUTH=off): every caller acts as an administrator"');
      return next();
    }
    try {
      ctx.state.identity = await identify(deps, ctx);
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      ctx.state.authFailure = err;
    }
    return next();
  };
}

async function identify(deps: AppDeps, ctx: Context): Promise<Identity | undefined> {
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
    const { principal } = await deps.tokens.verify(token);
    return { principal, via: 'bearer' };
  }
  const cookie = ctx.cookies.get(SESSION_COOKIE);
  if (!cookie) return undefined;
  const { principal: signed, csrf } = await deps.tokens.verify(cookie);
  // A session belongs to a local account: removing the account or changing
  // its roles and clearances takes effect at the next request, not when the
  // session expires.
  const user = await findUser(deps.db, signed.sub);
  if (!user) throw new AuthFailure('invalid_token', 'the account of this session no longer exists');
  const principal: Principal = Object.freeze({
    sub: user.username,
    roles: Object.freeze(toRoles(user.roles)),
    clearances: Object.freeze([...user.clearances]),
  });
  // A cookie is sent by the browser on its own, so a request that changes
  // state must also prove it came from Cairn's own pages: the CSRF token of
  // the session, which only those pages can read (from the cairn_csrf cookie).
  if (UNSAFE.has(ctx.method) && (!csrf || ctx.get(CSRF_HEADER) !== csrf)) ctx.state.csrfFailure = true;
  return { principal, via: 'cookie' };
}
