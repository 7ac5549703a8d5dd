import type { Context, Next } from 'koa';
import type { Caller } from './access.js';
import { createSyslogSink, type AuditSink } from './audit-syslog.js';
import type { Config } from './config.js';
import { appendAuditEvent, type AuditEvent, type ReadAudit } from './db/audit.js';
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
  const event = eventOf(who, action, outcome, detail, http);
  const start = performance.now();
  const { at } = await appendAuditEvent(deps.db, event);
  deps.metrics?.auditWrite((performance.now() - start) / 1000);
  deps.syslog?.send({ ...event, at });
}

function eventOf(who: Audited, action: AuditAction, outcome: string, detail?: Record<string, unknown>, http?: HttpRequestFacts): AuditEvent {
  const { via, principal, touched } = who;
  const more: Record<string, unknown> = { ...detail };
  if (via.protocol === 'dimse') more.callingAe = via.callingAe;
  if (via.protocol === 'cli') more.command = via.command;
  return {
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
}

/** The audit record the auditTrail middleware opened for this request; without one the request fails closed. */
export function auditRecordOf(ctx: Context): AuditRecord {
  const record = ctx.state.audit;
  if (!record) throw new Error(`no audit trail on ${ctx.method} ${ctx.path}`);
  return record;
}

/** A request's row as a read wrote it with its lookup: what it said, to tell whether the request ended as it said. */
interface WrittenRead {
  id: number;
  status: number;
  outcome?: string;
  sub?: string;
  detail?: Record<string, unknown>;
  /** How many UIDs the Caller had noted when it was written. */
  touched: number;
}

/** Per request: the sinks of its audit trail, and the row its read wrote, if one did. */
const trails = new WeakMap<AuditRecord, { audit: AuditDeps; written?: WrittenRead }>();

const touchedCount = (caller?: Caller): number => (caller ? caller.touched.studies.size + caller.touched.series.size + caller.touched.instances.size : 0);

/** Who, what detail and which HTTP facts a request's row names. */
function httpRow(
  ctx: Context,
  record: AuditRecord,
  status: number,
  failure?: unknown,
): { who: Audited; detail: Record<string, unknown>; http: HttpRequestFacts } {
  const caller = ctx.state.caller;
  const identity = ctx.state.identity;
  const refused: Audited = { via: httpVia(ctx), principal: identity?.principal, breakGlass: ctx.get('x-break-glass').trim() || undefined };
  const who: Audited = { ...(caller ?? refused), ...(record.sub !== undefined ? { sub: record.sub } : {}) };
  const detail: Record<string, unknown> = { ...record.detail };
  if (ctx.querystring) detail.query = ctx.querystring;
  if (failure instanceof ApiError) detail.error = failure.code;
  if (identity?.via) detail.via = identity.via;
  return { who, detail, http: { method: ctx.method, path: ctx.path, status } };
}

/**
 * The audit row of a read, for its lookup to write in the same statement
 * (server/db/lookup.ts): one round trip instead of two, and the row is in
 * the table before any data leaves, as the auditTrail middleware's would be.
 * The row says what the request answers when it goes as expected (`status`,
 * 200 unless told). If it ends otherwise (a 406 decided from the stored
 * transfer syntax, a frame the instance lacks, a blob that cannot be read),
 * the middleware appends a second row for the same request with the real
 * status and outcome, naming the first as `detail.supersedes`: the table is
 * append-only, so the first row is never changed. Undefined when the request
 * has no audit trail to write to, so the read writes nothing and the
 * middleware writes the row as for any other request.
 */
export function auditedRead(ctx: Context, status = 200): ReadAudit | undefined {
  const record = ctx.state.audit;
  const trail = record && trails.get(record);
  if (!record?.action || !trail) return undefined;
  const { action } = record;
  const { who, detail, http } = httpRow(ctx, record, status);
  const { study_uids: _s, series_uids: _se, instance_uids: _i, ...event } = eventOf(who, action, record.outcome ?? outcomeOf(status), detail, http);
  return {
    event,
    written: (row) => {
      trail.written = { id: row.id, status, outcome: record.outcome, sub: record.sub, detail: record.detail, touched: touchedCount(ctx.state.caller) };
      // The syslog copy names the UIDs the Caller noted from the rows, as the table's row does.
      trail.audit.syslog?.send({ ...eventOf(who, action, event.outcome, detail, http), at: row.at });
    },
  };
}

/**
 * The audit trail of HTTP requests: the guard names the action and makes the
 * Caller, handlers may add detail, and this records the row with what only
 * HTTP has (method, path, status, query string, how the credentials came).
 * A read whose lookup wrote the row (auditedRead) needs no second one unless
 * the request ended otherwise than that row says.
 */
export function auditTrail(deps: AppDeps) {
  const audit = openAudit(deps);
  return async (ctx: Context, next: Next): Promise<void> => {
    const record: AuditRecord = {};
    ctx.state.audit = record;
    const trail: { audit: AuditDeps; written?: WrittenRead } = { audit };
    trails.set(record, trail);
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
    const early = trail.written;
    const asWritten =
      early !== undefined &&
      failure === undefined &&
      status === early.status &&
      record.outcome === early.outcome &&
      record.sub === early.sub &&
      record.detail === early.detail &&
      touchedCount(ctx.state.caller) === early.touched;
    if (record.action && !asWritten) {
      const { who, detail, http } = httpRow(ctx, record, status, failure);
      if (early) detail.supersedes = early.id;
      await recordAudit(audit, who, record.action, record.outcome ?? outcomeOf(status), detail, http);
    }
    if (failure !== undefined) throw failure;
  };
}
