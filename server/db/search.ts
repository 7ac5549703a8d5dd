import type { Knex } from 'knex';
import { visible, type Caller, type IndexPath } from '../access.js';
import { ATTRIBUTES, type Level } from '../dicom/attributes.js';
import { Tag } from '../dicom/tags.js';
import { preparedQuery, type Db } from './knex.js';

// QIDO-RS search over the index (PS3.18 §10.6, matching per PS3.4 §C.2.2.2).
// One SQL statement per request: a CTE filters and pages on the key columns
// only, then the page's rows are joined back for their attributes (as stored
// JSON text, spliced into results unparsed), and the counts and
// ModalitiesInStudy are computed for those rows only.

export type { Level };

/** How one matching key constrains rows; universal matching never gets here. */
export type Condition =
  /** Single value or UID list matching (§C.2.2.2.1, §C.2.2.2.2): any of the values, exact. */
  | { op: 'in'; values: (string | number)[] }
  /** Wild card matching (§C.2.2.2.4), case-sensitive: a LIKE pattern. */
  | { op: 'like'; pattern: string }
  /**
   * Person name matching, case-insensitive: upper-cased LIKE patterns. One
   * pattern matches if any component group (Alphabetic, Ideographic,
   * Phonetic) matches; several are positional, one per group.
   */
  | { op: 'pn'; groups: string[] }
  /** Range matching (§C.2.2.2.5) on DA values `YYYYMMDD`, inclusive. */
  | { op: 'range'; from?: string; to?: string }
  /** Range matching on TM values, bounds normalised to `HHMMSS.ffffff`. */
  | { op: 'time'; from?: string; to?: string }
  /**
   * Range matching (§C.2.2.2.5) on DA values as a de-identified view shows
   * them: each moved back by its patient's keyed shift (Modified Dates,
   * server/deid/profile.ts). Bounds `YYYYMMDD`, inclusive.
   */
  | { op: 'shifted'; from?: string; to?: string; key: ShiftKey };

/** The key of a view's date shift as HMAC-SHA256 key blocks (server/deid/profile.ts ShiftKey); shifts are 1 to `span` days. */
export interface ShiftKey {
  readonly inner: Buffer;
  readonly outer: Buffer;
  readonly span: number;
}

/** `tag` is an 8-digit tag, or `sequence.item` for a sequence matching key (§C.2.2.2.6). */
export interface Match {
  tag: string;
  cond: Condition;
}

export interface SearchSpec {
  level: Level;
  matches: Match[];
  /** The study / series named by the target resource path. */
  scope: { studyUid?: string; seriesUid?: string };
  limit: number;
  offset: number;
  /** Which parts of each page row to load. */
  load: { study: boolean; studyCounts: boolean; series: boolean; seriesCount: boolean; metadata: boolean };
}

export interface SearchRow {
  total: number;
  studyUid: string;
  seriesUid?: string;
  sopInstanceUid?: string;
  /** The study's stored attributes as DICOM JSON text (studies.attributes_text). */
  studyAttributes?: string;
  studySeries?: number;
  studyInstances?: number;
  modalities?: string[];
  /** The series' stored attributes as DICOM JSON text (series.attributes_text). */
  seriesAttributes?: string;
  seriesInstances?: number;
  sopClassUid?: string;
  instanceNumber?: number | null;
  rows?: number | null;
  columns?: number | null;
  bitsAllocated?: number | null;
  numberOfFrames?: number | null;
  metadata?: string;
}

// Indexed columns for the matching keys (server/dicom/attributes.ts); everything here is a constant, never client text.
const ALIAS: Record<Level, string> = { study: 's', series: 'se', instance: 'i' };
export const COLUMN: Readonly<Record<string, string>> = Object.fromEntries(
  ATTRIBUTES.filter((e) => e.matching !== null && e.column !== null).map((e) => [e.tag, `${ALIAS[e.level]}.${e.column}`]),
);

// `path`: the rows each level reads, joined by joinUp(), for the visibility rule.
const LEVEL: Record<Level, { from: string; key: string; order: string; dir: string; path: IndexPath }> = {
  study: { from: 'studies as s', key: 's.study_uid', order: 's.study_date', dir: 'desc nulls last', path: { study: 's' } },
  series: { from: 'series as se', key: 'se.series_uid', order: 'se.series_number', dir: 'asc nulls last', path: { study: 's', series: 'se' } },
  instance: {
    from: 'instances as i',
    key: 'i.sop_instance_uid',
    order: 'i.instance_number',
    dir: 'asc nulls last',
    path: { study: 's', series: 'se', instance: 'i' },
  },
};

/** The page of matches, in a stable order, each with `total` = the number of matches overall. */
export async function searchIndex(db: Db, caller: Caller, spec: SearchSpec): Promise<SearchRow[]> {
  // Run prepared (server/db/knex.ts): one shape per combination of keys, so
  // value lists are one array parameter rather than one parameter per value.
  const rows = await preparedQuery<SearchRow>(db, searchQuery(db, caller, spec));
  caller.touched.noteAll(rows);
  return rows;
}

/** The one statement of a search (see searchIndex). */
export function searchQuery(db: Db, caller: Caller, spec: SearchSpec): Knex.QueryBuilder {
  const lv = LEVEL[spec.level];
  const m = db.from(lv.from).select(db.raw(`${lv.key} as k, ${lv.order} as o, count(*) over () as total`));
  joinUp(m, spec.level);
  // Visibility (server/access.ts) of every row read: a hidden one is exactly like a missing one.
  m.where(visible(db, lv.path, caller));
  if (spec.scope.studyUid) m.where(spec.level === 'study' ? 's.study_uid' : spec.level === 'series' ? 'se.study_uid' : 'i.study_uid', spec.scope.studyUid);
  if (spec.scope.seriesUid) m.where('i.series_uid', spec.scope.seriesUid);
  for (const match of spec.matches) applyMatch(db, m, match, caller);
  m.orderByRaw(`o ${lv.dir}, k`).limit(spec.limit).offset(spec.offset);

  const q = db.with('m', m).from('m').join(lv.from, lv.key, 'm.k');
  joinUp(q, spec.level);
  q.select('m.total', 's.study_uid as studyUid');
  const l = spec.load;
  if (l.study) q.select('s.attributes_text as studyAttributes');
  if (l.studyCounts) {
    // One pass over the study's series gives both their count and the
    // modalities. Both count only the series the caller may see, and the
    // instances only those the caller may see: a hidden row is absent from
    // every count. The instances are counted series by series, each from the
    // (series_uid, instance_number) index.
    q.joinRaw(
      `cross join lateral (select count(*)::int as n, array_remove(array_agg(distinct x.modality order by x.modality), null) as modalities,
         coalesce(sum((select count(*) from instances y where y.series_uid = x.series_uid and ?)), 0)::int as ni
       from series x where x.study_uid = s.study_uid and ?) as sc`,
      [visible(db, { study: 's', series: 'x', instance: 'y', checked: 'series' }, caller), visible(db, { study: 's', series: 'x', checked: 'study' }, caller)],
    );
    q.select('sc.n as studySeries', 'sc.modalities', 'sc.ni as studyInstances');
  }
  if (spec.level !== 'study') q.select('se.series_uid as seriesUid');
  if (l.series) q.select('se.attributes_text as seriesAttributes');
  if (l.seriesCount) {
    q.select(
      db.raw('(select count(*) from instances y where y.series_uid = se.series_uid and ?)::int as "seriesInstances"', [
        visible(db, { study: 's', series: 'se', instance: 'y', checked: 'series' }, caller),
      ]),
    );
  }
  if (spec.level === 'instance')
    q.select(
      'i.sop_instance_uid as sopInstanceUid',
      'i.sop_class_uid as sopClassUid',
      'i.instance_number as instanceNumber',
      'i.rows',
      'i.columns',
      'i.bits_allocated as bitsAllocated',
      'i.number_of_frames as numberOfFrames',
    );
  if (l.metadata) q.select('i.metadata');
  return q.orderByRaw(`m.o ${lv.dir}, m.k`);
}

function joinUp(q: Knex.QueryBuilder, level: Level): void {
  if (level === 'instance') q.join('series as se', 'se.series_uid', 'i.series_uid');
  if (level !== 'study') q.join('studies as s', 's.study_uid', 'se.study_uid');
}

function applyMatch(db: Db, q: Knex.QueryBuilder, match: Match, caller: Caller): void {
  const { tag, cond } = match;
  if (tag === Tag.ModalitiesInStudy) {
    // ModalitiesInStudy: a study matches if any of its series that the caller may see has a matching Modality.
    q.whereExists(
      db
        .from('series as x')
        .select(db.raw('1'))
        .whereRaw('x.study_uid = s.study_uid')
        .where(visible(db, { study: 's', series: 'x', checked: 'study' }, caller))
        .where((w) => applyCondition(w, 'x.modality', cond)),
    );
    return;
  }
  if (tag.includes('.')) {
    // PS3.4 §C.2.2.2.6: a sequence matches if the key matches in at least one item.
    const [seq, item] = tag.split('.');
    const values = db
      .from(db.raw("jsonb_array_elements(coalesce(se.attributes->?->'Value', '[]'::jsonb)) as it(v)", [seq]))
      .crossJoin(db.raw("jsonb_array_elements_text(coalesce(it.v->?->'Value', '[]'::jsonb)) as iv(t)", [item]))
      .select(db.raw('1'));
    q.whereExists(values.where((w) => applyCondition(w, 'iv.t', cond)));
    return;
  }
  applyCondition(q, COLUMN[tag], cond);
}

function applyCondition(q: Knex.QueryBuilder, col: string, cond: Condition): void {
  switch (cond.op) {
    case 'in':
      if (cond.values.length === 1) q.where(col, cond.values[0]);
      // The values of one key are all strings or all numbers; pg sends the list as one array.
      else q.whereRaw('?? = any(?)', [col, cond.values as string[]]);
      return;
    case 'like':
      q.whereRaw('?? like ?', [col, cond.pattern]);
      return;
    case 'range':
      if (cond.from !== undefined) q.where(col, '>=', cond.from);
      if (cond.to !== undefined) q.where(col, '<=', cond.to);
      return;
    case 'time': {
      // Stored TM values differ in precision (HHMM, HHMMSS.ffffff) and may use
      // the ACR-NEMA colons; normalise them to the bounds' fixed width.
      const t = `replace(${col}, ':', '')`;
      const norm = `(rpad(split_part(${t}, '.', 1), 6, '0') || '.' || rpad(split_part(${t}, '.', 2), 6, '0')) collate "C"`;
      if (cond.from !== undefined) q.whereRaw(`${norm} >= ?`, [cond.from]);
      if (cond.to !== undefined) q.whereRaw(`${norm} <= ?`, [cond.to]);
      return;
    }
    case 'pn':
      pnCondition(q, col, cond.groups);
      return;
    case 'shifted':
      shiftedCondition(q, col, cond);
  }
}

/**
 * The patient's shift in days, as Deidentifier.shiftDays() computes it:
 * 1 + (first 4 bytes of HMAC-SHA256(key, "shift:" + patient key)) mod span,
 * the patient key being `id:` + Patient ID, or `name:` + the Alphabetic name
 * when there is no ID. HMAC (RFC 2104) out of PostgreSQL's sha256(), with the
 * key blocks bound as parameters: the key is never stored, and the index
 * needs no extension and no column of shifts to keep up to date.
 */
const PATIENT_SHIFT = `(1 + ('x' || encode(substr(sha256(?::bytea || sha256(?::bytea || convert_to('shift:' || case when coalesce(s.patient_id, '') <> ''
  then 'id:' || s.patient_id else 'name:' || split_part(coalesce(s.patient_name, ''), '=', 1) end, 'UTF8'))), 1, 4), 'hex'))::bit(32)::bigint % ?)::int`;

/**
 * A stored DA value as the date it is, or null when it is no calendar date
 * of years 0001–9999 (shiftDate() in server/deid/profile.ts shows no such
 * value). Nested CASEs, since only CASE fixes the order of evaluation: the
 * casts and to_date() raise on what the outer test excludes. The day is
 * checked against its month's length in integers, cheaper per row than a
 * round trip through make_date() and to_char().
 */
const calendarDate = (col: string) => {
  const y = `left(${col}, 4)::int`;
  const leap = `case when ${y} % 4 = 0 and (${y} % 100 <> 0 or ${y} % 400 = 0) then 29 else 28 end`;
  return `case when ${col} ~ '^[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$' and left(${col}, 4) <> '0000' then
    case when right(${col}, 2)::int <= case substr(${col}, 5, 2) when '02' then ${leap} when '04' then 30 when '06' then 30 when '09' then 30 when '11' then 30 else 31 end
    then to_date(${col}, 'YYYYMMDD') end end`;
};

/**
 * Shifted dates. A shifted range is no single stored range, since every
 * patient has its own shift: each row's shown date (stored date minus its
 * patient's shift) is computed and compared, so matching is exact, and paging
 * and counts stay in SQL. Because every shift lies in 1..span, the stored
 * date lies in [from + 1, to + span]: those constant bounds come first so the
 * date index narrows the rows whose shift is computed. Dates shifted before
 * year 1 are not shown, so they match nothing.
 */
function shiftedCondition(q: Knex.QueryBuilder, col: string, cond: { from?: string; to?: string; key: ShiftKey }): void {
  if (cond.from !== undefined) q.where(col, '>=', addDays(cond.from, 1));
  const high = cond.to === undefined ? undefined : addDays(cond.to, cond.key.span);
  if (high !== undefined && high.length === 8) q.where(col, '<=', high);
  // OFFSET 0 keeps the subquery whole, so each row's shift is computed once.
  q.whereRaw(`exists (select 1 from (select ${calendarDate(col)} - ${PATIENT_SHIFT} as d offset 0) as z where z.d between ?::date and ?::date)`, [
    cond.key.outer,
    cond.key.inner,
    cond.key.span,
    isoDate(cond.from ?? '00010101'),
    isoDate(cond.to ?? '99991231'),
  ]);
}

/** `YYYYMMDD` plus `days`, as `YYYYMMDD` (more digits past year 9999). */
function addDays(da: string, days: number): string {
  const d = new Date(0);
  d.setUTCFullYear(Number(da.slice(0, 4)), Number(da.slice(4, 6)) - 1, Number(da.slice(6, 8)) + days);
  const y = d.getUTCFullYear();
  return `${String(y).padStart(4, '0')}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
}

function isoDate(da: string): string {
  return `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}`;
}

/**
 * The column holds `Alphabetic=Ideographic=Phonetic`. Each group is matched on
 * its own so a wildcard never spans groups. The Alphabetic branch also states
 * `upper(col) like '<literal prefix>%'`, which the text_pattern_ops index on
 * upper(patient_name) answers (the migration's studies_patient_name).
 */
function pnCondition(q: Knex.QueryBuilder, col: string, groups: string[]): void {
  const group = (n: number) => `upper(split_part(${col}, '=', ${n})) like ?`;
  if (groups.length > 1) {
    groups.forEach((g, i) => {
      if (g) q.whereRaw(group(i + 1), [g]);
    });
    return;
  }
  const p = groups[0];
  const prefix = literalPrefix(p);
  const alphabetic = prefix ? `(upper(${col}) like ? and ${group(1)})` : group(1);
  const bindings = prefix ? [`${prefix}%`, p, p, p] : [p, p, p];
  // Only a value holding "=" has Ideographic or Phonetic groups; saying so lets
  // partial indexes on those groups (if the migration has them) serve the branch.
  q.whereRaw(`(${alphabetic} or (${col} like '%=%' and (${group(2)} or ${group(3)})))`, bindings);
}

/** The part of a LIKE pattern before its first unescaped wildcard, still escaped. */
function literalPrefix(pattern: string): string {
  let i = 0;
  while (i < pattern.length && pattern[i] !== '%' && pattern[i] !== '_') i += pattern[i] === '\\' ? 2 : 1;
  return pattern.slice(0, i);
}
