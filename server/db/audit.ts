import { prepared, type Db } from './knex.js';

export interface AuditEvent {
  sub: string | null;
  roles: string[];
  /** Which kind of caller: an HTTP request, a DIMSE association, a command. */
  protocol: 'http' | 'dimse' | 'cli';
  /** The client's network address (HTTP, DIMSE). */
  client: string | null;
  action: string;
  /** The HTTP request and its status; null for the other protocols. */
  method: string | null;
  path: string | null;
  status: number | null;
  outcome: string;
  study_uids: string[];
  series_uids: string[];
  instance_uids: string[];
  break_glass: boolean;
  reason: string | null;
  detail: Record<string, unknown> | null;
}

export type StoredAuditEvent = AuditEvent & { id: number; at: Date };

const INSERT_AUDIT = `insert into audit_events
  (sub, roles, client, action, method, path, status, outcome, study_uids, series_uids, instance_uids, break_glass, reason, detail, protocol)
  values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) returning id, at`;

/** Appends one event. The table refuses updates and deletes (see the access migration). */
export async function appendAuditEvent(db: Db, e: AuditEvent): Promise<{ id: number; at: Date }> {
  const [row] = await prepared<{ id: number; at: Date }>(db, 'cairn_audit_insert', INSERT_AUDIT, [
    e.sub,
    e.roles,
    e.client,
    e.action,
    e.method,
    e.path,
    e.status,
    e.outcome,
    e.study_uids,
    e.series_uids,
    e.instance_uids,
    e.break_glass,
    e.reason,
    e.detail === null ? null : JSON.stringify(e.detail),
    e.protocol,
  ]);
  return row;
}

export interface AuditQuery {
  user?: string;
  study?: string;
  action?: string;
  from?: Date;
  to?: Date;
  /** Only events older than this id: a cursor that stays put while new events arrive. */
  before?: number;
  limit: number;
  offset: number;
}

/** Events newest first; `action=break-glass` finds every request that broke the glass. */
export async function queryAuditEvents(db: Db, q: AuditQuery): Promise<StoredAuditEvent[]> {
  const s = db('audit_events').select('*');
  if (q.user !== undefined) s.where('sub', q.user);
  if (q.study !== undefined) s.whereRaw('study_uids @> ?::text[]', [[q.study]]);
  if (q.action === 'break-glass') s.where('break_glass', true);
  else if (q.action !== undefined) s.where('action', q.action);
  if (q.from) s.where('at', '>=', q.from);
  if (q.to) s.where('at', '<=', q.to);
  if (q.before !== undefined) s.where('id', '<', q.before);
  return s.orderBy('id', 'desc').limit(q.limit).offset(q.offset);
}

/** Failed logins of one user name within the last `minutes`, since its last successful login. */
export async function recentLoginFailures(db: Db, username: string, minutes: number): Promise<number> {
  const row = await db('audit_events')
    .where({ sub: username, action: 'login-failed' })
    .whereRaw(`at > now() - make_interval(mins => ?)`, [minutes])
    .whereRaw(`id > coalesce((select max(id) from audit_events where sub = ? and action = 'login'), 0)`, [username])
    .count<{ n: number }[]>('* as n')
    .first();
  return Number(row?.n ?? 0);
}
