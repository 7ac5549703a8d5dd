import { randomBytes } from 'node:crypto';
import Router, { type RouterContext } from '@koa/router';
import { permits, type Principal } from '../access.js';
import { auditRecordOf } from '../audit.js';
import { recentLoginFailures } from '../db/audit.js';
import { createSession, revokeSession } from '../db/sessions.js';
import { findUser } from '../db/users.js';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { readFields } from '../http/body.js';
import { checkText } from '../http/client-text.js';
import { parseMediaType } from '../http/multipart.js';
import { CSRF_COOKIE, SESSION_COOKIE } from './authenticate.js';
import { loginPage } from './login-page.js';
import { checkPassword } from './passwords.js';

const LOGIN_FAILURE_LIMIT = 10;
const LOGIN_FAILURE_WINDOW_MINUTES = 15;

/** The login page and the session endpoints for browsers (the viewer and the upload page). */
export function authRouter(deps: AppDeps): Router {
  const r = new Router();
  r.get('/login', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Security-Policy', "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'");
    ctx.body = loginPage({
      next: safeNext(ctx.query.next),
      failed: ctx.query.error !== undefined,
      locked: ctx.query.error === 'locked',
      authOff: !deps.config.auth.enabled,
    });
  });
  r.post('/auth/login', login(deps));
  r.post('/auth/logout', logout(deps));
  r.get('/auth/logout', logout(deps));
  r.get('/auth/me', (ctx) => {
    const identity = ctx.state.identity;
    const failure = ctx.state.authFailure;
    if (failure) throw failure.toApiError();
    if (!identity) throw new ApiError(401, 'AuthenticationRequired', 'not logged in', { 'WWW-Authenticate': 'Bearer realm="cairn"' });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...identity.principal, via: identity.via };
  });
  return r;
}

/** Only a path on this server: never another origin (`//host`, `/\host`, `https:`). */
function safeNext(v: unknown): string {
  return typeof v === 'string' && /^\/(?![/\\])/.test(v) ? v : '/';
}

function wantsJson(ctx: RouterContext): boolean {
  return parseMediaType(ctx.get('content-type') || '').type === 'application/json';
}

function login(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const audit = auditRecordOf(ctx);
    audit.action = 'login-failed';
    // Login CSRF: a form on another site must not log the browser in as
    // someone else. Browsers send Origin with every cross-site POST.
    const origin = ctx.get('origin');
    if (origin && origin !== new URL(deps.config.publicUrl ?? `${ctx.protocol}://${ctx.host}`).origin) {
      throw new ApiError(403, 'CrossOriginLogin', `a login from ${origin} is refused; log in on this server's own page`);
    }
    const fields = await readFields(ctx);
    const username = typeof fields.username === 'string' ? fields.username.trim() : '';
    checkText('username', username, 'InvalidField');
    const password = typeof fields.password === 'string' ? fields.password : '';
    const next = safeNext(fields.next);
    audit.sub = username || undefined;
    // Guessing passwords: after LOGIN_FAILURE_LIMIT failures in a quarter of
    // an hour a user name is refused until the quarter has passed. Counted in
    // the audit trail, so every replica sees the same count.
    if (username && (await recentLoginFailures(deps.db, username, LOGIN_FAILURE_WINDOW_MINUTES)) >= LOGIN_FAILURE_LIMIT) {
      audit.outcome = 'failure';
      audit.detail = { locked: true };
      if (!wantsJson(ctx)) {
        ctx.status = 303;
        ctx.redirect(`/login?error=locked&next=${encodeURIComponent(next)}`);
        return;
      }
      throw new ApiError(429, 'TooManyFailedLogins', `too many failed logins for this user; try again in ${LOGIN_FAILURE_WINDOW_MINUTES} minutes`, {
        'Retry-After': String(LOGIN_FAILURE_WINDOW_MINUTES * 60),
      });
    }
    const user = username ? await findUser(deps.db, username) : undefined;
    const ok = await checkPassword(password, user?.password_hash);
    if (!ok || !user) {
      audit.outcome = 'failure';
      deps.log.warn({ user: username || undefined, client: ctx.ip }, 'failed login');
      if (wantsJson(ctx)) throw new ApiError(401, 'LoginFailed', 'unknown user or wrong password');
      ctx.status = 303;
      ctx.redirect(`/login?error=1&next=${encodeURIComponent(next)}`);
      return;
    }
    audit.action = 'login';
    const principal: Principal = { sub: user.username, roles: user.roles, clearances: user.clearances };
    const csrf = randomBytes(24).toString('base64url');
    const ttl = deps.config.auth.sessionTtlSeconds;
    // The session row is what every later request is checked against, so
    // that logging out (or an account change) ends it on every replica.
    const sid = randomBytes(18).toString('base64url');
    await createSession(deps.db, { id: sid, username: user.username, ttlSeconds: ttl, client: ctx.ip || null });
    const token = deps.tokens.sign(principal, ttl, { csrf, sid });
    const secure = ctx.secure || (deps.config.publicUrl ?? '').startsWith('https:');
    const common = { path: '/', sameSite: 'strict' as const, secure, maxAge: ttl * 1000, overwrite: true };
    ctx.cookies.set(SESSION_COOKIE, token, { ...common, httpOnly: true });
    // Readable by Cairn's own pages, which echo it in X-CSRF-Token.
    ctx.cookies.set(CSRF_COOKIE, csrf, { ...common, httpOnly: false });
    deps.log.info({ user: user.username }, 'login');
    if (wantsJson(ctx)) {
      ctx.body = { sub: principal.sub, roles: principal.roles, clearances: principal.clearances, csrfToken: csrf, expiresIn: ttl };
      return;
    }
    ctx.status = 303;
    // An uploader cannot search, so the study list would only answer 403: its home is the upload page.
    ctx.redirect(next === '/' && !permits(principal, 'search') && permits(principal, 'store') ? '/upload' : next);
  };
}

function logout(deps: AppDeps) {
  return async (ctx: RouterContext): Promise<void> => {
    const audit = auditRecordOf(ctx);
    audit.action = 'logout';
    // The session ends in the database, not only in this browser: a copy of
    // the cookie is refused from now on, here and on every replica.
    const sid = ctx.state.identity?.sid;
    if (sid) {
      const ended = await revokeSession(deps.db, sid, 'logged out');
      ctx.state.revocation?.sessionEnded(sid);
      audit.detail = { sessionEnded: ended };
    }
    clearCookiesAndAnswer(ctx);
  };
}

function clearCookiesAndAnswer(ctx: RouterContext): void {
  const expired = { path: '/', sameSite: 'strict' as const, maxAge: 0, overwrite: true };
  ctx.cookies.set(SESSION_COOKIE, '', { ...expired, httpOnly: true });
  ctx.cookies.set(CSRF_COOKIE, '', { ...expired, httpOnly: false });
  if (ctx.method === 'GET' || !wantsJson(ctx)) {
    ctx.status = 303;
    ctx.redirect('/login');
    return;
  }
  ctx.status = 204;
}
