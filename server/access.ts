import type { Knex } from 'knex';
import type { Db } from './db/knex.js';

// The one access rule (DESIGN.md): which roles may do what, and which studies,
// series and instances a caller may see. Only this module knows roles and
// labels. Visibility is defined once, as SQL text (rule() at the bottom), and
// every index read in db/ is constrained by it on every row it reads or
// counts: visible() in queries built with knex, visibleText() and
// visibilityValues() in prepared statements of fixed text, with the Caller
// its protocol adapter made (the HTTP route guard, a DIMSE association, a
// command-line import) with newCaller().

export const ROLES = ['uploader', 'clinician', 'researcher', 'admin', 'auditor', 'steward'] as const;
export type Role = (typeof ROLES)[number];

/**
 * `annotate`: store derived objects (SR, SEG, presentation states, KOS;
 * server/dicom/derived.ts) into a study the caller can see, and nothing
 * else (server/archive.ts). Whoever may store may annotate.
 */
export type Action = 'store' | 'search' | 'retrieve' | 'delete' | 'label' | 'user' | 'audit' | 'annotate' | 'collect';

/** Roles → actions (the README's role table says the same). */
const GRANTS: Record<Role, readonly Action[]> = {
  uploader: ['store'],
  clinician: ['search', 'retrieve', 'annotate'],
  researcher: ['search', 'retrieve'],
  admin: ['store', 'search', 'retrieve', 'delete', 'label', 'user', 'audit', 'collect'],
  auditor: ['audit'],
  // A research data steward picks cohorts from the study list and shares them as collections (server/collections/).
  steward: ['search', 'retrieve', 'collect'],
};

/** Roles that may break the glass: a researcher or an uploader never may. */
const BREAK_GLASS: readonly Role[] = ['clinician', 'admin'];

/** Who is asking: an authenticated identity with its roles and clearances. */
export interface Principal {
  readonly sub: string;
  readonly roles: readonly Role[];
  /** Sensitivity labels this identity is cleared for. */
  readonly clearances: readonly string[];
  /** A de-identified view its credential names (a token's `deid` claim): a profile, a project, or both. */
  readonly deid?: DeidChoice;
}

/** A de-identified view chosen by name: the options of server/deid/settings.ts as text, and the project of its pseudonyms. */
export interface DeidChoice {
  readonly profile?: string;
  readonly project?: string;
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
  /**
   * Rejected instances (IHE IOCM) are visible to this call too: only for a
   * role that may delete, which asked for it (X-Include-Rejected over HTTP),
   * to review or purge them.
   */
  readonly includeRejected?: boolean;
  /**
   * The collection (server/collections/) this call is confined to: only its
   * member studies and series are visible, read through the collection's own
   * de-identified view.
   */
  readonly collection?: CollectionScope;
  readonly touched: Touched;
  readonly via: Via;
}

/** A collection as a call confined to it sees it. */
export interface CollectionScope {
  readonly id: string;
  /** The collection's de-identified view: always one, whoever reads through the collection. */
  readonly deid: Required<DeidChoice>;
}

export function newCaller(principal: Principal, via: Via, breakGlass?: string, opts: { includeRejected?: boolean; collection?: CollectionScope } = {}): Caller {
  return {
    principal,
    breakGlass,
    touched: new Touched(),
    via,
    ...(opts.includeRejected ? { includeRejected: true } : {}),
    ...(opts.collection ? { collection: opts.collection } : {}),
  };
}

/** Who may see rejected instances when asking for them: those who may delete them for good. */
export function maySeeRejected(principal: Principal): boolean {
  return permits(principal, 'delete');
}

/** The UIDs a request returned or changed, for its audit row. */
export class Touched {
  readonly studies = new Set<string>();
  readonly series = new Set<string>();
  readonly instances = new Set<string>();

  note(row: { studyUid?: string; seriesUid?: string; sopInstanceUid?: string }): void {
    if (row.studyUid) this.studies.add(row.studyUid);
    if (row.seriesUid) this.series.add(row.seriesUid);
    if (row.sopInstanceUid) this.instances.add(row.sopInstanceUid);
  }

  noteAll(rows: readonly { studyUid?: string; seriesUid?: string; sopInstanceUid?: string }[]): void {
    for (const r of rows) this.note(r);
  }
}

export function toRoles(values: readonly string[]): Role[] {
  return ROLES.filter((r) => values.includes(r));
}

export function permits(principal: Principal, action: Action): boolean {
  return principal.roles.some((r) => GRANTS[r].includes(action) || (action === 'annotate' && GRANTS[r].includes('store')));
}

export function mayBreakGlass(principal: Principal): boolean {
  return principal.roles.some((r) => BREAK_GLASS.includes(r));
}

/** The least a break-glass reason must say: a few words, not a keystroke. */
export function breakGlassReasonProblem(reason: string): string | undefined {
  const words = reason
    .trim()
    .split(/\s+/)
    .filter((w) => /[\p{L}\p{N}]/u.test(w));
  if (words.length < 3 || reason.trim().length < 12) return 'X-Break-Glass must give the reason in a few words (at least 3 words, 12 characters)';
  if (reason.length > 500) return 'X-Break-Glass reason is longer than 500 characters';
  return undefined;
}

export const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/**
 * The rows of one path down the index, by their aliases in a statement: a
 * study, below study level its series, and below series level the instance.
 * `checked` names the last row an enclosing query already holds to the rule
 * (a count of a visible study's series, of a visible series' instances): the
 * condition is then the rule for the rows below it only, which may still
 * read the rows above. So a count repeats nothing per counted row, and stays
 * a scan of its index.
 */
export type IndexPath =
  | { study: string; series?: never; instance?: never; checked?: never }
  | { study: string; series: string; instance?: never; checked?: 'study' }
  | { study: string; series: string; instance: string; checked?: 'study' | 'series' };

/**
 * The caller's values the rule reads; as parameters of a prepared statement,
 * in this order. `collection` is a value of a call confined to a collection
 * only: the rule of every other call neither reads nor binds it.
 */
const CALLER_VALUES = ['glass', 'clearances', 'rejected', 'collection'] as const;
type CallerValue = (typeof CALLER_VALUES)[number];

function callerValue(caller: Caller, v: CallerValue): boolean | string[] | string {
  if (v === 'glass') return caller.breakGlass !== undefined;
  if (v === 'rejected') return caller.includeRejected === true;
  if (v === 'collection') {
    if (!caller.collection) throw new Error('the rule read the collection of a call confined to none');
    return caller.collection.id;
  }
  return [...caller.principal.clearances];
}

/**
 * The rule, the only place it is written. A study, series or instance is
 * visible when these hold:
 *
 * - every label of its study row and of its series row is among the caller's
 *   clearances (an unlabelled row holds the empty set, contained in every
 *   set), or the caller broke the glass;
 * - it is not rejected (IHE IOCM, a Key Object Selection Document with a
 *   rejection title, PS3.16 CID 7010): an instance is live unless its row is
 *   rejected, a series or study while it holds a live instance. Breaking the
 *   glass does not show rejected instances: they were withdrawn as wrong, not
 *   hidden from the caller. Only a caller that asked for them may see them
 *   (Caller.includeRejected);
 * - for a call confined to a collection (Caller.collection) only: the
 *   study, or the series, is a member of the collection (membership()).
 *   Only such a call's statements carry that condition, under names and
 *   texts of their own, so the statements and plans of every other call are
 *   as they were.
 *
 * Liveness is checked on the deepest row of the path only: a live instance
 * makes its series and study live. A series or study row without the
 * `has_rejected` hint (migrations/20261203100000_rejection.ts) is live at
 * once; only one with the hint costs a look for a live instance below it.
 *
 * It is SQL text generated here rather than a PostgreSQL function, so the
 * planner always sees the bare expression and no plan depends on function
 * inlining: PostgreSQL inlines a SQL function only while its body is a
 * single expression without a sub-select, and a collection grant is an
 * EXISTS over another table, which would make the function an opaque call
 * per row. With the caller's values bound, `true or …` and `false or …` fold
 * away at planning, leaving plain `labels <@ clearances` filters or none.
 * `param` writes the placeholder of one of the caller's values: the values
 * are always parameters, never text, so one statement text serves every
 * caller (glass broken or not) and prepared statements stay one per shape.
 */
function rule(path: IndexPath, param: (v: CallerValue) => string, confined: boolean): string {
  const labels = cleared(path, param);
  const alive = `(${param('rejected')} or ${live(path)})`;
  const member = confined ? membership(path, param) : undefined;
  return [labels, alive, member].filter((part) => part !== undefined).join(' and ');
}

/**
 * The study (and, below study level, the series) is a member of the caller's
 * collection: a member row names the whole study (no series) or this series.
 * A path whose series an enclosing query already checked needs nothing more.
 */
function membership(path: IndexPath, param: (v: CallerValue) => string): string | undefined {
  if (path.checked === 'series') return undefined;
  const id = `${param('collection')}::uuid`;
  if (path.series === undefined)
    return `exists (select 1 from collection_members cm where cm.collection_id = ${id} and cm.study_uid = ${alias(path.study)}.study_uid)`;
  const se = alias(path.series);
  return `exists (select 1 from collection_members cm where cm.collection_id = ${id} and cm.study_uid = ${se}.study_uid and (cm.series_uid is null or cm.series_uid = ${se}.series_uid))`;
}

/** The labels part of the rule: the rows' labels are among the clearances, or the glass is broken. */
function cleared(path: IndexPath, param: (v: CallerValue) => string): string | undefined {
  const below = path.checked === undefined ? 0 : path.checked === 'study' ? 1 : 2;
  const labelled = [path.study, path.series].slice(below).filter((row) => row !== undefined);
  if (!labelled.length) return undefined;
  const each = labelled.map((row) => `${alias(row)}.labels <@ ${param('clearances')}::text[]`);
  return `(${param('glass')} or (${each.join(' and ')}))`;
}

/** The deepest row of the path is not rejected (a series or study: holds a live instance). */
function live(path: IndexPath): string {
  if (path.instance !== undefined) return `not ${alias(path.instance)}.rejected`;
  const [row, key] = path.series !== undefined ? [alias(path.series), 'series_uid'] : [alias(path.study), 'study_uid'];
  return `(not ${row}.has_rejected or exists (select 1 from instances live where live.${key} = ${row}.${key} and not live.rejected))`;
}

/** Aliases are constants of the statements in db/; anything else is a bug, never spliced. */
function alias(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a table alias: ${name}`);
  return name;
}

/** The rule as a condition of a query built with knex, the caller's values bound as `?`. */
export function visible(db: Db | Knex.Transaction, path: IndexPath, caller: Caller): Knex.Raw {
  return bind(
    db,
    rule(path, (v) => `\0${v}\0`, caller.collection !== undefined),
    caller,
  );
}

function bind(db: Db | Knex.Transaction, marked: string, caller: Caller): Knex.Raw {
  // `?` bindings go by position in the text, whatever order rule() wrote its parts in.
  const bindings: (boolean | string[] | string)[] = [];
  const sql = marked.replace(/\0(\w+)\0/g, (_, v: CallerValue) => {
    bindings.push(callerValue(caller, v));
    return '?';
  });
  return db.raw(sql, bindings);
}

/**
 * Which changes of the change sequence a caller may follow: those of a study
 * and series whose labels the rule clears (rows that hold a `labels` column,
 * the live rows or the labels a deletion kept). Rejection is not applied: a
 * "rejected" change is the news a follower needs to withdraw its copy, and
 * it names nothing the caller could not see before.
 */
export function visibleChange(db: Db, path: { study: string; series: string }, caller: Caller): Knex.Raw {
  // A collection is read through its DICOMweb root without the change feed, which has no member rows to hold to it.
  if (caller.collection) throw new Error('the change feed is not read through a collection');
  return bind(db, cleared(path, (v) => `\0${v}\0`) as string, caller);
}

/**
 * The rule as part of a prepared statement's fixed text, for a whole path:
 * the caller's values are the parameters `$first` and on, which
 * visibilityValues() gives in order.
 */
export function visibleText(path: IndexPath & { checked?: undefined }, first: number, caller?: Caller): string {
  return rule(path, (v) => `$${first + CALLER_VALUES.indexOf(v)}`, caller?.collection !== undefined);
}

export function visibilityValues(caller: Caller): (boolean | string[] | string)[] {
  return CALLER_VALUES.filter((v) => v !== 'collection' || caller.collection).map((v) => callerValue(caller, v));
}

/** What a prepared statement's name adds for the caller's shape of the rule: nothing for a call confined to no collection. */
export function visibilityShape(caller: Caller): string {
  return caller.collection ? '_collection' : '';
}
