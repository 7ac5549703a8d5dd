import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { AppDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import type { Metrics } from './metrics.js';

const REALM = 'Bearer realm="cairn"';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * GET /metrics in Prometheus text format, for an administrator or for the
 * static METRICS_TOKEN (what a Prometheus server sends as its bearer token,
 * so it needs no account). Scrapes are not audited: they read no patient
 * data, and one every few seconds would swamp the trail.
 */
export function metricsRouter(deps: AppDeps, metrics: Metrics): Router {
  const r = new Router();
  const token = deps.config.metricsToken ? digest(deps.config.metricsToken) : undefined;
  r.get('/metrics', async (ctx) => {
    if (!(token && sentToken(ctx, token))) mayRead(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = metrics.contentType;
    ctx.body = await metrics.exposition();
  });
  return r;
}

/** Whether the request's bearer token is METRICS_TOKEN, compared in constant time (as digests, so of one length). */
function sentToken(ctx: Context, expected: Buffer): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('authorization'));
  return m !== null && timingSafeEqual(digest(m[1]), expected);
}

/** Otherwise the credentials of an administrator, as for any other route: 401 without good ones, 403 for another role. */
function mayRead(ctx: Context): void {
  const failure = ctx.state.authFailure;
  if (failure) throw failure.toApiError();
  const identity = ctx.state.identity;
  if (!identity)
    throw new ApiError(401, 'AuthenticationRequired', "GET /metrics needs the METRICS_TOKEN or an administrator's credentials", { 'WWW-Authenticate': REALM });
  if (!identity.principal.roles.includes('admin'))
    throw new ApiError(403, 'Forbidden', `the roles [${identity.principal.roles.join(', ')}] may not read metrics; an administrator or the METRICS_TOKEN may`);
}
