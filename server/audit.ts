import type { Context, Next } from 'koa';
import type { Caller } from './access.js';
import type { Identity } from './auth/authenticate.js';
import { createSyslogSink } from './audit-syslog.js';
import { appendAuditEvent, type AuditEvent } from './db/audit.js';
import type { AppDeps } from './deps.js';
import { ApiError } from './errors.js';

// The audit trail (issue 3): one append-only row per request that reads or
// changes patient data or archive state, whatever its outcome, naming who,
// from where, what, which UIDs it returned or changed, and any break-glass
// reason. Written before the response leaves: if the row cannot be written
// the request fails with 500 and its data is not sent.

export type AuditAction =
  | 'search'
  | 'retrieve'
  | 'store'
  | 'delete'
  | 'label-read'
  | 'label-change'
  | 'audit-read'
  | 'login'
  | 'login-failed'
  | 'logout';

/** Filled in as the request runs: the guard names the action, handlers may add detail. */
export interface AuditRecord {
  action?: AuditAction;
  /** The name a login attempt gave, for login and login-failed rows. */
  sub?: string;
  detail?: Record<string, unknown>;
  /** Set where the HTTP status does not tell (a failed login answers with a redirect to the form). */
  outcome?: string;
}

function outcomeOf(status: number): string {
  if (status < 300) return status === 202 ? 'partial' : 'success';
  if (status < 400) return 'success';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'denied';
  if (status === 404) return 'not-found';
  if (status < 500) return 'invalid';
  return 'error';
}

export function auditTrail(deps: AppDeps) {
  const syslog = deps.config.auditSyslog ? createSyslogSink(deps.config.auditSyslog, deps.log) : undefined;
  return async (ctx: Context, next: Next): Promise<void> => {
    const record: AuditRecord = {};
    ctx.state.audit = record;
    let failure: unknown;
    let status: number;
    try {
      await next();
      status = ctx.status;
    } catch (err) {
      failure = err;
      const st = (err as { status?: unknown }).status;
      status = typeof st === 'number' && st >= 400 ? st : 500;
    }
    if (record.action) {
      const caller = ctx.state.caller as Caller | undefined;
      const identity = ctx.state.identity as Identity | undefined;
      const principal = caller?.principal ?? identity?.principal;
      const glassReason = caller?.breakGlass ?? (ctx.get('x-break-glass').trim() || null);
      const detail: Record<string, unknown> = { ...record.detail };
      if (ctx.querystring) detail.query = ctx.querystring;
      if (failure instanceof ApiError) detail.error = failure.code;
      if (identity?.via) detail.via = identity.via;
      const event: AuditEvent = {
        sub: record.sub ?? principal?.sub ?? null,
        roles: principal ? [...principal.roles] : [],
        client: ctx.ip || null,
        action: record.action,
        method: ctx.method,
        path: ctx.path,
        status,
        outcome: record.outcome ?? outcomeOf(status),
        study_uids: caller ? [...caller.touched.studies] : [],
        series_uids: caller ? [...caller.touched.series] : [],
        instance_uids: caller ? [...caller.touched.instances] : [],
        // A refused attempt to break the glass is flagged too, with the reason it gave.
        break_glass: glassReason !== null,
        reason: glassReason,
        detail: Object.keys(detail).length ? detail : null,
      };
      const { at } = await appendAuditEvent(deps.db, event);
      syslog?.send({ ...event, at });
    }
    if (failure !== undefined) throw failure;
  };
}
