import type { Context, Next } from 'koa';
import type { Caller } from './access.js';
import { createSyslogSink, type AuditSink } from './audit-syslog.js';
import type { Config } from './config.js';
import { appendAuditEvent, type AuditEvent } from './db/audit.js';
import type { Db } from './db/knex.js';
import type { AppDeps } from './deps.js';
import { ApiError } from './errors.js';
import { httpVia } from './http/guard.js';
import './http/state.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/metrics.js';

// The audit trail: one append-only row per call (an HTTP request, a DIMSE
// association, a command) that reads or changes patient data or archive
// state, whatever its outcome, naming who, from where, what, which UIDs it
// returned or changed, and any break-glass reason. Over HTTP it is written
// before the response leaves: if the row cannot be written the request fails
// with 500 and its data is not sent.

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
  | 'logout'
  | 'token-revoke'
  | 'session-revoke'
  | 'ae-read'
  | 'ae-change'
  | 'collection-read'
  | 'collection-change'
  | 'collection-share'
  | 'export'
  | 'export-manage'
  | 'rejection-undo'
  | 'rejection-purge';

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

/** Where audit rows go: the table, and the syslog copy when AUDIT_SYSLOG is set. */
export interface AuditDeps {
  db: Db;
  syslog?: AuditSink;
  /** Where the time of each write is measured. */
  metrics?: Pick<Metrics, 'auditWrite'>;
}

/** Opens the audit trail's sinks once, for an app or a command (the syslog sender keeps its socket). */
export function openAudit(deps: { config: Config; db: Db; log: Logger; metrics?: Pick<Metrics, 'auditWrite'> }): AuditDeps {
  return { db: deps.db, syslog: deps.config.auditSyslog ? createSyslogSink(deps.config.auditSyslog, deps.log) : undefined, metrics: deps.metrics };
}

/**
 * Who an audit row names: a Caller, or, for a call refused before it had one
 * (no or bad credentials, a role without the action), where it came from
 * and what it claimed to be. `sub` names a login attempt's user.
 */
export type Audited = Pick<Caller, 'via'> & Partial<Pick<Caller, 'principal' | 'breakGlass' | 'touched'>> & { sub?: string };

/** What only an HTTP request has: its method, path and status. */
export interface HttpRequestFacts {
  method: string;
  path: string;
  status: number;
}

/**
 * Appends one audit row for a call of any protocol, and sends its syslog
 * copy: who (and from where), the action and its outcome, the UIDs the call
 * returned or changed, any break-glass reason. Resolves once the row is
 * written; a row that cannot be written rejects, and the caller must then
 * fail the call.
 */
export async function recordAudit(
  deps: AuditDeps,
  who: Audited,
  action: AuditAction,
  outcome: string,
  detail?: Record<string, unknown>,
  http?: HttpRequestFacts,
): Promise<void> {
  const { via, principal, touched } = who;
  const more: Record<string, unknown> = { ...detail };
  if (via.protocol === 'dimse') more.callingAe = via.callingAe;
  if (via.protocol === 'cli') more.command = via.command;
  const event: AuditEvent = {
    sub: who.sub ?? principal?.sub ?? null,
    roles: principal ? [...principal.roles] : [],
    protocol: via.protocol,
    client: via.protocol === 'cli' ? null : via.address,
    action,
    method: http?.method ?? null,
    path: http?.path ?? null,
    status: http?.status ?? null,
    outcome,
    study_uids: touched ? [...touched.studies] : [],
    series_uids: touched ? [...touched.series] : [],
    instance_uids: touched ? [...touched.instances] : [],
    // A refused attempt to break the glass is flagged too, with the reason it gave.
    break_glass: who.breakGlass !== undefined,
    reason: who.breakGlass ?? null,
    detail: Object.keys(more).length ? more : null,
  };
  const start = performance.now();
  const { at } = await appendAuditEvent(deps.db, event);
  deps.metrics?.auditWrite((performance.now() - start) / 1000);
  deps.syslog?.send({ ...event, at });
}

/**
 * The audit trail of HTTP requests: the guard names the action and makes the
 * Caller, handlers may add detail, and this records the row with what only
 * HTTP has (method, path, status, query string, how the credentials came).
 */
/** The audit record the auditTrail middleware opened for this request; without one the request fails closed. */
export function auditRecordOf(ctx: Context): AuditRecord {
  const record = ctx.state.audit;
  if (!record) throw new Error(`no audit trail on ${ctx.method} ${ctx.path}`);
  return record;
}

export function auditTrail(deps: AppDeps) {
  const audit = openAudit(deps);
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
      const caller = ctx.state.caller;
      const identity = ctx.state.identity;
      const refused: Audited = { via: httpVia(ctx), principal: identity?.principal, breakGlass: ctx.get('x-break-glass').trim() || undefined };
      const who: Audited = { ...(caller ?? refused), ...(record.sub !== undefined ? { sub: record.sub } : {}) };
      const detail: Record<string, unknown> = { ...record.detail };
      if (ctx.querystring) detail.query = ctx.querystring;
      if (failure instanceof ApiError) detail.error = failure.code;
      if (identity?.via) detail.via = identity.via;
      await recordAudit(audit, who, record.action, record.outcome ?? outcomeOf(status), detail, { method: ctx.method, path: ctx.path, status });
    }
    if (failure !== undefined) throw failure;
  };
}
