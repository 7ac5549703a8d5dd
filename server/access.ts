import type { Knex } from 'knex';
import type { Db } from './db/knex.js';

// The one access rule (DESIGN.md): which roles may do what, and which studies
// and series a caller may see. Only this module knows roles and labels; every
// index read in db/ is constrained by clearedFor() (on the studies and series
// rows it joins) or visibleSeries() (for reads of instances), with the
// Caller its protocol adapter made (the HTTP route guard, a DIMSE
// association, a command-line import) with newCaller().

export const ROLES = ['uploader', 'clinician', 'researcher', 'admin', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export type Action = 'store' | 'search' | 'retrieve' | 'delete' | 'label' | 'user' | 'audit';

/** Roles → actions (the README's role table says the same). */
const GRANTS: Record<Role, readonly Action[]> = {
  uploader: ['store'],
  clinician: ['search', 'retrieve'],
  researcher: ['search', 'retrieve'],
  admin: ['store', 'search', 'retrieve', 'delete', 'label', 'user', 'audit'],
  auditor: ['audit'],
};

/** Roles that may break the glass: a researcher or an uploader never may. */
const BREAK_GLASS: readonly Role[] = ['clinician', 'admin'];

/** Who is asking: an authenticated identity with its roles and clearances. */
export interface Principal {
  readonly sub: string;
  readonly roles: readonly Role[];
  /** Sensitivity labels this identity is cleared for. */
  readonly clearances: readonly string[];
}

/**
 * Where a call came from, whatever the protocol: an HTTP request (the client
 * address), a DIMSE association (the calling AE title and its address) or a
 * command run on the server.
 */
export type Via =
  | { readonly protocol: 'http'; readonly address: string | null }
  | { readonly protocol: 'dimse'; readonly callingAe: string; readonly address: string | null }
  | { readonly protocol: 'cli'; readonly command: string };

/**
 * What one call (an HTTP request, a DIMSE association, a command) is allowed
 * and what it touched: made by its protocol adapter, taken by every read and
 * write, read by the audit trail.
 */
export interface Caller {
  readonly principal: Principal;
  /** The reason given for breaking the glass (X-Break-Glass over HTTP), when it is broken for this call. */
  readonly breakGlass?: string;
  readonly touched: Touched;
  readonly via: Via;
}

export function newCaller(principal: Principal, via: Via, breakGlass?: string): Caller {
  return { principal, breakGlass, touched: new Touched(), via };
}

/** The UIDs a request returned or changed, for its audit row. */
export class Touched {
  readonly studies = new Set<string>();
  readonly series = new Set<string>();
  readonly instances = new Set<string>();

  note(row: { study_uid?: string; series_uid?: string; sop_instance_uid?: string }): void {
    if (row.study_uid) this.studies.add(row.study_uid);
    if (row.series_uid) this.series.add(row.series_uid);
    if (row.sop_instance_uid) this.instances.add(row.sop_instance_uid);
  }

  noteAll(rows: readonly { study_uid?: string; series_uid?: string; sop_instance_uid?: string }[]): void {
    for (const r of rows) this.note(r);
  }
}

export function toRoles(values: readonly string[]): Role[] {
  return ROLES.filter((r) => values.includes(r));
}

export function permits(principal: Principal, action: Action): boolean {
  return principal.roles.some((r) => GRANTS[r].includes(action));
}

export function mayBreakGlass(principal: Principal): boolean {
  return principal.roles.some((r) => BREAK_GLASS.includes(r));
}

/** The least a break-glass reason must say: a few words, not a keystroke. */
export function breakGlassReasonProblem(reason: string): string | undefined {
  const words = reason.trim().split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w));
  if (words.length < 3 || reason.trim().length < 12) return 'X-Break-Glass must give the reason in a few words (at least 3 words, 12 characters)';
  if (reason.length > 500) return 'X-Break-Glass reason is longer than 500 characters';
  return undefined;
}

export const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/**
 * A SQL condition: the label set in `column` (a studies.labels or
 * series.labels column) is visible to the caller, that is, every label in it
 * is among the caller's clearances; with the glass broken, every set is.
 */
export function clearedFor(db: Db | Knex.Transaction, column: string, caller: Caller): Knex.Raw {
  if (caller.breakGlass !== undefined) return db.raw('true');
  return db.raw('?? <@ ?::text[]', [column, [...caller.principal.clearances]]);
}

/**
 * The same rule for a prepared statement (server/db/lookup.ts): the study row
 * `study` and series row `series` are visible to the caller, with the
 * caller's part as two parameters, `$n` (the glass is broken) and `$n+1`
 * (the clearances), whose values visibilityValues() gives.
 */
export function visibleSql(study: string, series: string, n: number): string {
  return `($${n} or (${study}.labels <@ $${n + 1}::text[] and ${series}.labels <@ $${n + 1}::text[]))`;
}

export function visibilityValues(caller: Caller): [boolean, string[]] {
  return [caller.breakGlass !== undefined, [...caller.principal.clearances]];
}

/**
 * The series this caller may see: those of visible studies whose own labels
 * the caller is cleared for. Instance-level reads constrain with this. Reads
 * of one study name it, so the subquery stays that study's few series rather
 * than every series in the archive.
 */
export function visibleSeries(db: Db | Knex.Transaction, caller: Caller, within?: { studyUid: string }): Knex.QueryBuilder {
  const q = db('series as vse')
    .join('studies as vst', 'vst.study_uid', 'vse.study_uid')
    .select('vse.series_uid')
    .where(clearedFor(db, 'vst.labels', caller))
    .where(clearedFor(db, 'vse.labels', caller));
  if (within) q.where('vse.study_uid', within.studyUid);
  return q;
}
