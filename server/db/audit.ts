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

/** An event's values but its UIDs, which a read's statement takes from the rows it finds (insertAuditFrom). */
export type ReadAuditEvent = Omit<AuditEvent, 'study_uids' | 'series_uids' | 'instance_uids'>;

/**
 * An audit row written by the statement of a read itself (server/db/lookup.ts),
 * so that finding the rows and recording who got them is one round trip, and
 * the row exists before any of their data can leave.
 */
export interface ReadAudit {
  event: ReadAuditEvent;
  /** Told the written row's id and time, once the statement that wrote it has returned. */
  written(row: { id: number; at: Date }): void;
}

// Typed, because in INSERT … SELECT the parameters are not typed by the columns they fill.
const READ_AUDIT_VALUES: readonly (readonly [keyof ReadAuditEvent, string])[] = [
  ['sub', 'text'],
  ['roles', 'text[]'],
  ['client', 'text'],
  ['action', 'text'],
  ['method', 'text'],
  ['path', 'text'],
  ['status', 'integer'],
  ['outcome', 'text'],
  ['break_glass', 'boolean'],
  ['reason', 'text'],
  ['detail', 'jsonb'],
  ['protocol', 'text'],
];

/** The parameters of insertAuditFrom(), in order. */
export function readAuditValues(e: ReadAuditEvent): unknown[] {
  return READ_AUDIT_VALUES.map(([k]) => (k === 'detail' ? (e.detail === null ? null : JSON.stringify(e.detail)) : e[k]));
}

/**
 * The insert of one audit row as a data-modifying part of a read's
 * statement: its UIDs are those of the rows of `source` (a WITH query whose
 * rows have "studyUid", "seriesUid", "sopInstanceUid" and their order
 * "ord"), in the order the caller's Touched notes them; every other value
 * is a parameter from `$first` on (readAuditValues). It writes nothing when
 * `source` is empty: a read that finds nothing leaves its row to the audit
 * trail's middleware, which writes it with the 404.
 */
export function insertAuditFrom(source: string, first: number): string {
  const columns = READ_AUDIT_VALUES.map(([k]) => k).join(', ');
  const values = READ_AUDIT_VALUES.map(([, type], i) => `$${first + i}::${type}`).join(', ');
  return `insert into audit_events (${columns}, study_uids, series_uids, instance_uids)
    select ${values},
      array(select distinct "studyUid" from ${source} order by 1),
      array(select distinct "seriesUid" from ${source} order by 1),
      array(select "sopInstanceUid" from ${source} order by ord)
    where exists (select 1 from ${source})
    returning id, at`;
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
