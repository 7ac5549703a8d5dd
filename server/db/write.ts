import type { Knex } from 'knex';
import { visibleSeries, type Caller } from '../access.js';
import type { Db } from './knex.js';
import type { InstanceRow, SeriesRow, StudyRow } from './rows.js';

export type IndexOutcome =
  | { kind: 'stored' }
  | { kind: 'identical' }
  | { kind: 'conflict' }
  | { kind: 'replaced'; oldBlobKey: string }
  | { kind: 'series-elsewhere'; studyUid: string };

/**
 * Writes the index rows of one instance. The common case is one statement
 * (so one round trip and one commit): study and series rows are created by
 * the first instance that names them (concurrent writers meet at ON
 * CONFLICT, never at a duplicate row; the foreign keys are checked at the
 * end of the statement, after the CTEs ran), and the instance row is written
 * unless its SOP Instance UID is taken or its series belongs to another
 * study. Only when no row was written does a second transaction find out why.
 */
export async function indexInstance(db: Db, study: StudyRow, series: SeriesRow, instance: InstanceRow, overwrite: boolean): Promise<IndexOutcome> {
  const row = { ...instance, bulk: JSON.stringify(instance.bulk), frames: instance.frames ? JSON.stringify(instance.frames) : null };
  const insertStudy = addLabels(db, db('studies').insert({ ...study, attributes: JSON.stringify(study.attributes) }), 'studies', 'study_uid', study.labels);
  const insertSeries = addLabels(db, db('series').insert({ ...series, attributes: JSON.stringify(series.attributes) }), 'series', 'series_uid', series.labels);
  const cols = Object.keys(row) as (keyof typeof row)[];
  const insertInstance = db.raw(
    `insert into instances (${cols.map(() => '??').join(', ')}) select ${cols.map(() => '?').join(', ')}
     where not exists (select 1 from series where series_uid = ? and study_uid <> ?)
     on conflict (sop_instance_uid) do nothing returning sop_instance_uid`,
    [...cols, ...cols.map((c) => row[c]), series.series_uid, series.study_uid],
  );
  const result = await db.raw(`with s as (?), se as (?), i as (?) select count(*)::int as inserted from i`, [insertStudy, insertSeries, insertInstance]);
  if (result.rows[0].inserted === 1) return { kind: 'stored' };
  return db.transaction(async (trx) => {
    const owner = await trx('series').where({ series_uid: series.series_uid }).first('study_uid');
    if (owner && owner.study_uid !== series.study_uid) return { kind: 'series-elsewhere', studyUid: owner.study_uid };
    const existing = await trx('instances').where({ sop_instance_uid: instance.sop_instance_uid }).forUpdate().first('sha256', 'blob_key', 'series_uid');
    if (!existing) throw new Error('instance row vanished during store');
    if (existing.sha256 === instance.sha256 && existing.series_uid === instance.series_uid) return { kind: 'identical' };
    if (!overwrite || existing.series_uid !== instance.series_uid) return { kind: 'conflict' };
    await trx('instances').where({ sop_instance_uid: instance.sop_instance_uid }).update(row);
    return { kind: 'replaced', oldBlobKey: existing.blob_key };
  });
}

/**
 * An existing study or series row is left as it is, except that labels the
 * ingest rules gave this instance are added to it. Without new labels (the
 * common case) the conflict is ignored, so concurrent stores into one study
 * do not queue on its row.
 */
function addLabels(db: Db, insert: Knex.QueryBuilder, table: 'studies' | 'series', key: string, labels: string[]): Knex.QueryBuilder {
  if (!labels.length) return insert.onConflict(key).ignore();
  return insert
    .onConflict(key)
    .merge({ labels: db.raw(`(select array_agg(distinct l order by l) from unnest(${table}.labels || excluded.labels) as l)`) })
    .where(db.raw(`not (excluded.labels <@ ${table}.labels)`));
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
      .whereIn('series_uid', visibleSeries(trx, caller, { studyUid: where.study_uid }))
      .del()
      .returning(['blob_key', 'study_uid', 'series_uid', 'sop_instance_uid']);
    caller.touched.noteAll(rows);
    await trx('series')
      .where({ study_uid: where.study_uid })
      .whereNotExists(trx('instances').whereRaw('instances.series_uid = series.series_uid'))
      .del();
    await trx('studies')
      .where({ study_uid: where.study_uid })
      .whereNotExists(trx('series').whereRaw('series.study_uid = studies.study_uid'))
      .del();
    return rows.map((r) => r.blob_key);
  });
}

/** Blob keys under the index, for the orphan sweep. */
export async function indexedBlobKeys(db: Db, keys: string[]): Promise<Set<string>> {
  if (!keys.length) return new Set();
  const rows: { blob_key: string }[] = await db('instances').whereIn('blob_key', keys).select('blob_key');
  return new Set(rows.map((r) => r.blob_key));
}
