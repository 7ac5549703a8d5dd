import type { RouterContext } from '@koa/router';
import type { Context, Next } from 'koa';
import { breakGlassReasonProblem, mayBreakGlass, maySeeRejected, newCaller, permits, type Action, type Caller, type Principal, type Via } from '../access.js';
import { ApiError } from '../errors.js';
import type { AuditAction } from '../audit.js';

/** Marks guard middleware, so a test can check that every route has one. */
export const GUARD = Symbol('cairn.guard');

const REALM = 'Bearer realm="cairn"';

/**
 * The first middleware of every route that touches patient data or archive
 * state: names the audit action, refuses a missing or bad credential (401),
 * a role without the action (403) and a break-glass attempt by a role that
 * may not (403), then puts the request's Caller (server/access.ts) in
 * ctx.state.caller. Reads in db/ take that Caller, so a route without a guard
 * cannot read anything (callerOf throws).
 */
export function guard(action: Action, auditAs: AuditAction) {
  const mw = async (ctx: RouterContext, next: Next): Promise<void> => {
    const audit = ctx.state.audit;
    if (audit) audit.action = auditAs;
    const failure = ctx.state.authFailure;
    if (failure) {
      const status = failure.error === 'invalid_request' ? 400 : 401;
      throw new ApiError(status, status === 400 ? 'InvalidRequest' : 'InvalidToken', failure.message, {
        'WWW-Authenticate': `${REALM}, error="${failure.error}", error_description="${failure.message.replace(/"/g, "'")}"`,
      });
    }
    const identity = ctx.state.identity;
    if (!identity)
      throw new ApiError(401, 'AuthenticationRequired', 'this request needs a bearer token or a session (log in at /login)', { 'WWW-Authenticate': REALM });
    if (ctx.state.csrfFailure)
      throw new ApiError(403, 'CsrfTokenInvalid', `a request with the session cookie that changes state needs the X-CSRF-Token header of the session`);
    const { principal } = identity;
    if (!permits(principal, action)) throw new ApiError(403, 'Forbidden', `the roles [${principal.roles.join(', ')}] may not ${action}`);
    const reason = ctx.get('x-break-glass');
    if (reason && !mayBreakGlass(principal))
      throw new ApiError(403, 'BreakGlassForbidden', `the roles [${principal.roles.join(', ')}] may not break the glass`);
    const problem = reason ? breakGlassReasonProblem(reason) : undefined;
    if (problem) throw new ApiError(400, 'BreakGlassReasonMissing', problem);
    const includeRejected = includeRejectedOf(ctx, principal);
    // Below a collection's DICOMweb root (server/collections/scope.ts) the call is confined to the collection.
    const caller = newCaller(principal, httpVia(ctx), reason ? reason.trim() : undefined, { includeRejected, collection: ctx.state.collection });
    ctx.state.caller = caller;
    return next();
  };
  return Object.assign(mw, { [GUARD]: action });
}

/** The Caller the route's guard made; a route without a guard fails closed. */
export function callerOf(ctx: Context): Caller {
  const caller = ctx.state.caller;
  if (!caller) throw new Error(`no guard on ${ctx.method} ${ctx.path}`);
  return caller;
}

/** Where an HTTP request came from (behind a trusted proxy, the X-Forwarded-For client). */
export function httpVia(ctx: Context): Via {
  return { protocol: 'http', address: ctx.ip || null };
}

/** X-Include-Rejected: true shows rejected instances (IHE IOCM) to a role that may delete them, to review or purge. */
function includeRejectedOf(ctx: Context, principal: Principal): boolean {
  const value = ctx.get('x-include-rejected').trim().toLowerCase();
  if (!value || value === 'false') return false;
  if (value !== 'true') throw new ApiError(400, 'InvalidHeader', `X-Include-Rejected must be true or false, not "${value}"`);
  if (!maySeeRejected(principal)) throw new ApiError(403, 'Forbidden', `the roles [${principal.roles.join(', ')}] may not see rejected instances`);
  return true;
}
