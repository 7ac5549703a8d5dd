import type { Knex } from 'knex';
import { visible, type Caller } from '../access.js';
import { indexColumns } from '../dicom/attributes.js';
import { prepared, type Db } from './knex.js';
import type { InstanceRow, SeriesRow, StudyRow } from './rows.js';

export type IndexOutcome =
  | { kind: 'stored' }
  | { kind: 'identical' }
  | { kind: 'conflict' }
  | { kind: 'replaced'; oldBlobKey: string }
  | { kind: 'series-elsewhere'; studyUid: string }
  /** The SOP Instance UID was rejected (IHE IOCM): it is not accepted again. */
  | { kind: 'rejected' };

/**
 * Writes the index rows of one instance. The common case is one statement
 * (so one round trip and one commit): study and series rows are created by
 * the first instance that names them (concurrent writers meet at ON
 * CONFLICT, never at a duplicate row; the foreign keys are checked at the
 * end of the statement, after the CTEs ran), and the instance row is written
 * unless its SOP Instance UID is taken or rejected, or its series belongs to
 * another study. Only when no row was written does a second transaction find
 * out why.
 *
 * `then` runs in the same transaction once the instance row is new or
 * replaced (a rejection note's rejection, so the note and what it does
 * commit together); the statement then runs unprepared inside it.
 */
export async function indexInstance(
  db: Db,
  study: StudyRow,
  series: SeriesRow,
  instance: InstanceRow,
  overwrite: boolean,
  then?: (trx: Knex.Transaction) => Promise<void>,
): Promise<IndexOutcome> {
  const row = { ...instance, bulk: JSON.stringify(instance.bulk), frames: instance.frames ? JSON.stringify(instance.frames) : null };
  const values = [
    ...STUDY_COLUMNS.map((c) => (c === 'attributes' ? JSON.stringify(study.attributes) : study[c])),
    ...SERIES_COLUMNS.map((c) => (c === 'attributes' ? JSON.stringify(series.attributes) : series[c])),
    ...INSTANCE_COLUMNS.map((c) => row[c]),
  ];
  const labelled = (study.labels.length ? 1 : 0) + (series.labels.length ? 2 : 0);
  const why = async (trx: Knex.Transaction): Promise<IndexOutcome> => {
    if (await trx('rejections').where({ sop_instance_uid: instance.sop_instance_uid }).first('sop_instance_uid')) return { kind: 'rejected' };
    const owner = await trx('series').where({ series_uid: series.series_uid }).first('study_uid');
    if (owner && owner.study_uid !== series.study_uid) return { kind: 'series-elsewhere', studyUid: owner.study_uid };
    const existing = await trx('instances').where({ sop_instance_uid: instance.sop_instance_uid }).forUpdate().first('sha256', 'blob_key', 'series_uid');
    if (!existing) throw new Error('instance row vanished during store');
    if (existing.sha256 === instance.sha256 && existing.series_uid === instance.series_uid) return { kind: 'identical' };
    if (!overwrite || existing.series_uid !== instance.series_uid) return { kind: 'conflict' };
    await trx('instances').where({ sop_instance_uid: instance.sop_instance_uid }).update(row);
    await appendChanges(trx, 'replaced', [instance]);
    if (then) await then(trx);
    return { kind: 'replaced', oldBlobKey: existing.blob_key };
  };
  if (then) {
    return db.transaction(async (trx) => {
      const { sql, bindings } = positional(INDEX_STATEMENTS[labelled], values);
      const { rows } = await trx.raw(sql, bindings);
      if (rows[0].inserted !== 1) return why(trx);
      await then(trx);
      return { kind: 'stored' };
    });
  }
  const [result] = await prepared<{ inserted: number }>(db, `cairn_index_instance_${labelled}`, INDEX_STATEMENTS[labelled], values);
  if (result.inserted === 1) return { kind: 'stored' };
  return db.transaction(why);
}

/** A statement with `$n` parameters as knex raw text with `?` bindings, in order of appearance. */
function positional(text: string, values: readonly unknown[]): { sql: string; bindings: Knex.RawBinding[] } {
  const bindings: Knex.RawBinding[] = [];
  const sql = text.replace(/\$(\d+)/g, (_, n: string) => {
    bindings.push(values[Number(n) - 1] as Knex.RawBinding);
    return '?';
  });
  return { sql, bindings };
}

// The columns each row writes, in the order of the statement's parameters:
// the registry's index columns (server/dicom/attributes.ts), then the rest.
export const STUDY_COLUMNS = [...indexColumns('study'), 'attributes', 'attributes_text', 'labels'] as const satisfies readonly (keyof StudyRow)[];
export const SERIES_COLUMNS = [
  ...indexColumns('series'),
  'study_uid',
  'attributes',
  'attributes_text',
  'labels',
] as const satisfies readonly (keyof SeriesRow)[];
export const INSTANCE_COLUMNS = [
  ...indexColumns('instance'),
  'series_uid',
  'study_uid',
  'transfer_syntax_uid',
  'blob_key',
  'size',
  'sha256',
  'bulk',
  'frames',
  'metadata',
] as const satisfies readonly (keyof InstanceRow)[];

// A column added to a row type and not here (nor in the registry) fails the type check.
type Exhaustive<R, C extends readonly (keyof R)[]> = [Exclude<keyof R, C[number]>] extends [never] ? true : Exclude<keyof R, C[number]>;
const everyColumn: [
  Exhaustive<StudyRow, typeof STUDY_COLUMNS>,
  Exhaustive<SeriesRow, typeof SERIES_COLUMNS>,
  Exhaustive<InstanceRow, typeof INSTANCE_COLUMNS>,
] = [true, true, true];
void everyColumn;

/**
 * An existing study or series row is left as it is, except that labels the
 * ingest rules gave this instance are added to it. Without new labels (the
 * common case) the conflict is ignored, so concurrent stores into one study
 * do not queue on its row.
 */
function onConflict(table: 'studies' | 'series', key: string, labelled: boolean): string {
  if (!labelled) return `on conflict (${key}) do nothing`;
  return `on conflict (${key}) do update set labels = (select array_agg(distinct l order by l) from unnest(${table}.labels || excluded.labels) as l)
    where not (excluded.labels <@ ${table}.labels)`;
}

/**
 * The one statement of a store, in its four forms (bit 1: the study has
 * labels to add, bit 2: the series has). Written out rather than built per
 * call, and run as a prepared statement: building and planning this CTE was
 * a large part of a store's CPU. The instance row it writes, and only that,
 * gets its change row in the same statement.
 */
const INDEX_STATEMENTS = [0, 1, 2, 3].map((labelled) => {
  let n = 0;
  const params = (cols: readonly string[]): string => cols.map(() => `$${++n}`).join(', ');
  const quoted = (cols: readonly string[]): string => cols.map((c) => `"${c}"`).join(', ');
  const studyValues = params(STUDY_COLUMNS);
  const seriesValues = params(SERIES_COLUMNS);
  const instanceValues = params(INSTANCE_COLUMNS);
  const seriesUid = `$${SERIES_COLUMNS.indexOf('series_uid') + STUDY_COLUMNS.length + 1}`;
  const seriesStudyUid = `$${SERIES_COLUMNS.indexOf('study_uid') + STUDY_COLUMNS.length + 1}`;
  const sopInstanceUid = `$${INSTANCE_COLUMNS.indexOf('sop_instance_uid') + SERIES_COLUMNS.length + STUDY_COLUMNS.length + 1}`;
  return `with s as (insert into studies (${quoted(STUDY_COLUMNS)}) values (${studyValues}) ${onConflict('studies', 'study_uid', (labelled & 1) !== 0)}),
    se as (insert into series (${quoted(SERIES_COLUMNS)}) values (${seriesValues}) ${onConflict('series', 'series_uid', (labelled & 2) !== 0)}),
    i as (insert into instances (${quoted(INSTANCE_COLUMNS)}) select ${instanceValues}
      where not exists (select 1 from series where series_uid = ${seriesUid} and study_uid <> ${seriesStudyUid})
        and not exists (select 1 from rejections where sop_instance_uid = ${sopInstanceUid})
      on conflict (sop_instance_uid) do nothing returning study_uid, series_uid, sop_instance_uid),
    c as (insert into changes (kind, study_uid, series_uid, sop_instance_uid) select 'stored', study_uid, series_uid, sop_instance_uid from i)
    select count(*)::int as inserted from i`;
});

/**
 * The EXISTS subquery that keeps, of the `instances` rows a statement
 * touches, those whose whole path (study, series and the instance row) the
 * caller may see under the one visibility rule (server/access.ts). Naming
 * the study keeps the subquery to its few series.
 */
function visiblePath(trx: Knex.Transaction, studyUid: string, caller: Caller): Knex.QueryBuilder {
  return trx('series as vse')
    .join('studies as vst', 'vst.study_uid', 'vse.study_uid')
    .select(trx.raw('1'))
    .whereRaw('vse.series_uid = instances.series_uid')
    .where('vse.study_uid', studyUid)
    .where(visible(trx, { study: 'vst', series: 'vse', instance: 'instances' }, caller));
}

/**
 * Deletes the instance rows the caller may see (and series/studies left
 * empty); returns the blob keys to remove. A series hidden from the caller
 * stays, and so does its study.
 */
export async function deleteInstances(db: Db, caller: Caller, where: { study_uid: string; series_uid?: string; sop_instance_uid?: string }): Promise<string[]> {
  return db.transaction(async (trx) => {
    const rows: { blob_key: string; study_uid: string; series_uid: string; sop_instance_uid: string }[] = await trx('instances')
      .where(where)
      .whereExists(visiblePath(trx, where.study_uid, caller))
      .del()
      .returning(['blob_key', 'study_uid', 'series_uid', 'sop_instance_uid']);
    caller.touched.noteAll(rows.map((r) => ({ studyUid: r.study_uid, seriesUid: r.series_uid, sopInstanceUid: r.sop_instance_uid })));
    await recordDeletion(trx, rows);
    return rows.map((r) => r.blob_key);
  });
}

/**
 * After instance rows were deleted in `trx`: their change rows, with the
 * labels their study and series had, and the series and studies left empty go.
 */
async function recordDeletion(trx: Knex.Transaction, rows: readonly { study_uid: string; series_uid: string; sop_instance_uid: string }[]): Promise<void> {
  // The labels the study and series had, for the change feed once their rows are gone.
  const labels: { series_uid: string; series_labels: string[]; study_labels: string[] }[] = rows.length
    ? await trx('series as se')
        .join('studies as st', 'st.study_uid', 'se.study_uid')
        .whereIn('se.series_uid', [...new Set(rows.map((r) => r.series_uid))])
        .select('se.series_uid', 'se.labels as series_labels', 'st.labels as study_labels')
    : [];
  const bySeries = new Map(labels.map((l) => [l.series_uid, l]));
  await appendChanges(
    trx,
    'deleted',
    rows.map((r) => ({ ...r, study_labels: bySeries.get(r.series_uid)?.study_labels, series_labels: bySeries.get(r.series_uid)?.series_labels })),
  );
  const studyUids = [...new Set(rows.map((r) => r.study_uid))];
  await trx('series').whereIn('study_uid', studyUids).whereNotExists(trx('instances').whereRaw('instances.series_uid = series.series_uid')).del();
  await trx('studies').whereIn('study_uid', studyUids).whereNotExists(trx('series').whereRaw('series.study_uid = studies.study_uid')).del();
}

export type ChangeKind = 'stored' | 'replaced' | 'deleted' | 'relabelled' | 'rejected' | 'restored';

/**
 * Appends change rows (migrations/20261201041000_changes.ts) inside the
 * transaction of the write they record, in the order given: one statement
 * with three array parameters, however many rows. A delete also gives the
 * labels the study and series had, which the change feed reads once their
 * rows are gone (one JSON parameter then).
 */
export async function appendChanges(
  trx: Knex.Transaction,
  kind: ChangeKind,
  rows: readonly {
    study_uid: string;
    series_uid?: string | null;
    sop_instance_uid?: string | null;
    study_labels?: string[];
    series_labels?: string[];
  }[],
): Promise<void> {
  if (!rows.length) return;
  if (rows.some((r) => r.study_labels !== undefined)) {
    const records = rows.map((r) => ({
      s: r.study_uid,
      se: r.series_uid ?? null,
      i: r.sop_instance_uid ?? null,
      sl: r.study_labels ?? null,
      sel: r.series_labels ?? null,
    }));
    await trx.raw(
      `insert into changes (kind, study_uid, series_uid, sop_instance_uid, study_labels, series_labels)
        select ?, s, se, i, sl, sel from rows from (jsonb_to_recordset(?::jsonb) as (s text, se text, i text, sl text[], sel text[])) with ordinality as u(s, se, i, sl, sel, n) order by n`,
      [kind, JSON.stringify(records)],
    );
    return;
  }
  await trx.raw(
    `insert into changes (kind, study_uid, series_uid, sop_instance_uid)
      select ?, s, se, i from unnest(?::text[], ?::text[], ?::text[]) with ordinality as u(s, se, i, n) order by n`,
    [kind, rows.map((r) => r.study_uid), rows.map((r) => r.series_uid ?? null) as Knex.Value, rows.map((r) => r.sop_instance_uid ?? null) as Knex.Value],
  );
}

/**
 * The change rows of a relabel: one per instance of the study or series, in
 * series and instance order, each keeping the labels its study and series had
 * before (`*_labels_before`), so that the change feed can tell a follower
 * who was cleared for them that the instance left its view, and which of
 * the two was relabelled (`relabel_level`).
 */
export async function appendRelabelChanges(trx: Knex.Transaction, t: { studyUid: string; seriesUid?: string }, before: string[]): Promise<void> {
  await trx.raw(
    `insert into changes (kind, study_uid, series_uid, sop_instance_uid, study_labels_before, series_labels_before, relabel_level)
      select 'relabelled', i.study_uid, i.series_uid, i.sop_instance_uid,
        case when ?::boolean then st.labels else ?::text[] end, case when ?::boolean then ?::text[] else se.labels end, ?
      from instances i join series se on se.series_uid = i.series_uid join studies st on st.study_uid = se.study_uid
      where i.study_uid = ? and (?::text is null or i.series_uid = ?)
      order by i.series_uid, i.instance_number nulls last, i.sop_instance_uid`,
    [
      t.seriesUid !== undefined,
      before as unknown as Knex.Value,
      t.seriesUid !== undefined,
      before as unknown as Knex.Value,
      t.seriesUid !== undefined ? 'series' : 'study',
      t.studyUid,
      t.seriesUid ?? null,
      t.seriesUid ?? null,
    ],
  );
}

/** Blob keys under the index, for the orphan sweep. */
export async function indexedBlobKeys(db: Db, keys: string[]): Promise<Set<string>> {
  if (!keys.length) return new Set();
  const rows: { blob_key: string }[] = await db('instances').whereIn('blob_key', keys).select('blob_key');
  return new Set(rows.map((r) => r.blob_key));
}

/** What a rejection note rejects, and why (server/dicom/rejection-note.ts). */
export interface RejectionRecord {
  kosInstanceUid: string;
  code: { value: string; scheme: string; meaning: string };
  refs: readonly { studyUid: string; seriesUid: string; sopInstanceUid: string }[];
}

/**
 * Rejects the referenced instances, inside the transaction that indexes the
 * rejection note (IHE IOCM): each stored one the caller may see is marked
 * rejected (the visibility rule then hides it from every read), its series
 * and study get the hint the rule reads, and it gets a change row. Every
 * referenced UID not stored yet is recorded too, so that it is refused when
 * it arrives. A referenced instance the caller may not see, or stored under
 * other study or series UIDs than the note says, is left as it is. Returns
 * the instances rejected now.
 */
export async function rejectInstances(
  trx: Knex.Transaction,
  caller: Caller,
  r: RejectionRecord,
): Promise<{ studyUid: string; seriesUid: string; sopInstanceUid: string }[]> {
  const uids = [...new Set(r.refs.map((ref) => ref.sopInstanceUid))];
  if (!uids.length) return [];
  const stored: { sop_instance_uid: string; study_uid: string; series_uid: string; seen: boolean }[] = await trx('instances as i')
    .join('series as se', 'se.series_uid', 'i.series_uid')
    .join('studies as st', 'st.study_uid', 'se.study_uid')
    .whereIn('i.sop_instance_uid', uids)
    .select('i.sop_instance_uid', 'i.study_uid', 'i.series_uid', trx.raw('? as seen', [visible(trx, { study: 'st', series: 'se', instance: 'i' }, caller)]))
    .forUpdate('i');
  const byUid = new Map(stored.map((row) => [row.sop_instance_uid, row]));
  const taken = r.refs.filter((ref) => {
    const row = byUid.get(ref.sopInstanceUid);
    return !row || (row.seen && row.study_uid === ref.studyUid && row.series_uid === ref.seriesUid);
  });
  if (!taken.length) return [];
  const rows: { sop_instance_uid: string; study_uid: string; series_uid: string }[] = await trx('instances')
    .whereIn(
      'sop_instance_uid',
      taken.map((t) => t.sopInstanceUid),
    )
    .where('rejected', false)
    .update({ rejected: true })
    .returning(['sop_instance_uid', 'study_uid', 'series_uid']);
  const seriesUids = [...new Set(rows.map((x) => x.series_uid))];
  const studyUids = [...new Set(rows.map((x) => x.study_uid))];
  if (rows.length) {
    await trx('series').whereIn('series_uid', seriesUids).where('has_rejected', false).update({ has_rejected: true });
    await trx('studies').whereIn('study_uid', studyUids).where('has_rejected', false).update({ has_rejected: true });
  }
  await trx('rejections')
    .insert(
      taken.map((t) => ({
        sop_instance_uid: t.sopInstanceUid,
        study_uid: t.studyUid,
        series_uid: t.seriesUid,
        kos_instance_uid: r.kosInstanceUid,
        code_value: r.code.value,
        coding_scheme: r.code.scheme,
        code_meaning: r.code.meaning,
      })),
    )
    .onConflict('sop_instance_uid')
    .ignore();
  await appendChanges(trx, 'rejected', rows);
  const rejected = rows.map((x) => ({ studyUid: x.study_uid, seriesUid: x.series_uid, sopInstanceUid: x.sop_instance_uid }));
  caller.touched.noteAll(rejected);
  return rejected;
}

/** The advisory lock (PostgreSQL, across replicas) that a purge of rejected data holds, and an undo waits for. */
const PURGE_LOCK = 'cairn:rejection-purge';

/**
 * Undoes the rejection of the instances under a study, series or instance
 * (an admin's correction, IHE IOCM): each rejected one the caller may see by
 * its labels is live again and gets a change row of kind `restored`; the
 * rejections recorded there, of instances stored or not, are forgotten, so
 * their SOP Instance UIDs are accepted again. Waits for a purge that is
 * running, so that nothing is restored whose blob a purge already removed.
 */
export async function restoreInstances(
  db: Db,
  caller: Caller,
  where: { study_uid: string; series_uid?: string; sop_instance_uid?: string },
): Promise<{ restored: { studyUid: string; seriesUid: string; sopInstanceUid: string }[]; forgotten: number }> {
  return db.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [PURGE_LOCK]);
    const rejectedToo: Caller = { ...caller, includeRejected: true };
    const rows: { study_uid: string; series_uid: string; sop_instance_uid: string }[] = await trx('instances')
      .where(where)
      .where('rejected', true)
      .whereExists(visiblePath(trx, where.study_uid, rejectedToo))
      .update({ rejected: false })
      .returning(['study_uid', 'series_uid', 'sop_instance_uid']);
    const stored = new Set(rows.map((r) => r.sop_instance_uid));
    // Rejections of instances not stored (yet) under the target go too; those of hidden stored ones stay.
    const forgotten = await trx('rejections')
      .where(where)
      .where((q) => {
        q.whereIn('sop_instance_uid', [...stored]).orWhereNotExists(trx('instances').whereRaw('instances.sop_instance_uid = rejections.sop_instance_uid'));
      })
      .del();
    await appendChanges(trx, 'restored', rows);
    const restored = rows.map((r) => ({ studyUid: r.study_uid, seriesUid: r.series_uid, sopInstanceUid: r.sop_instance_uid }));
    caller.touched.noteAll(restored);
    return { restored, forgotten: Number(forgotten) };
  });
}

/**
 * Runs `fn` while holding the purge lock, or resolves to undefined at once
 * when another replica (or request) holds it. The lock is held by a
 * transaction that writes nothing, so it never holds back the change feed.
 */
export async function withPurgeLock<T>(db: Db, fn: () => Promise<T>): Promise<T | undefined> {
  return db.transaction(async (trx) => {
    const { rows } = await trx.raw('select pg_try_advisory_xact_lock(hashtext(?)) as ok', [PURGE_LOCK]);
    if (!rows[0].ok) return undefined;
    return fn();
  });
}

export interface PurgeCandidate {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  blobKey: string;
}

/** Rejected instances whose rejection is older than `before`, oldest first. */
export async function rejectedBefore(db: Db, before: Date, limit: number): Promise<PurgeCandidate[]> {
  return db('instances as i')
    .join('rejections as r', 'r.sop_instance_uid', 'i.sop_instance_uid')
    .where('i.rejected', true)
    .where('r.at', '<', before)
    .orderBy('r.at')
    .limit(limit)
    .select('i.study_uid as studyUid', 'i.series_uid as seriesUid', 'i.sop_instance_uid as sopInstanceUid', 'i.blob_key as blobKey');
}

/** Deletes the index rows of rejected instances (their blobs already gone), with their change rows; returns those deleted. */
export async function deleteRejected(db: Db, sopInstanceUids: readonly string[]): Promise<{ studyUid: string; seriesUid: string; sopInstanceUid: string }[]> {
  if (!sopInstanceUids.length) return [];
  return db.transaction(async (trx) => {
    const rows: { study_uid: string; series_uid: string; sop_instance_uid: string }[] = await trx('instances')
      .whereIn('sop_instance_uid', sopInstanceUids)
      .where('rejected', true)
      .del()
      .returning(['study_uid', 'series_uid', 'sop_instance_uid']);
    await recordDeletion(trx, rows);
    return rows.map((r) => ({ studyUid: r.study_uid, seriesUid: r.series_uid, sopInstanceUid: r.sop_instance_uid }));
  });
}
