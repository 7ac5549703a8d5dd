import type { Db } from './knex.js';
import type { InstanceRow, SeriesRow, StudyRow } from './rows.js';

export type IndexOutcome =
  | { kind: 'stored' }
  | { kind: 'identical' }
  | { kind: 'conflict' }
  | { kind: 'replaced'; oldBlobKey: string }
  | { kind: 'series-elsewhere'; studyUid: string };

/**
 * Writes the index rows of one instance in one transaction. Study and series
 * rows are created by the first instance that names them (concurrent writers
 * meet at ON CONFLICT, never at a duplicate row); the instance row is never
 * written twice for one SOP Instance UID.
 */
export async function indexInstance(db: Db, study: StudyRow, series: SeriesRow, instance: InstanceRow, overwrite: boolean): Promise<IndexOutcome> {
  return db.transaction(async (trx) => {
    await trx('studies').insert({ ...study, attributes: JSON.stringify(study.attributes) }).onConflict('study_uid').ignore();
    await trx('series').insert({ ...series, attributes: JSON.stringify(series.attributes) }).onConflict('series_uid').ignore();
    const owner = await trx('series').where({ series_uid: series.series_uid }).first('study_uid');
    if (owner && owner.study_uid !== series.study_uid) return { kind: 'series-elsewhere', studyUid: owner.study_uid };
    const row = { ...instance, bulk: JSON.stringify(instance.bulk), frames: instance.frames ? JSON.stringify(instance.frames) : null };
    const inserted = await trx('instances').insert(row).onConflict('sop_instance_uid').ignore().returning('sop_instance_uid');
    if (inserted.length) return { kind: 'stored' };
    const existing = await trx('instances').where({ sop_instance_uid: instance.sop_instance_uid }).forUpdate().first('sha256', 'blob_key', 'series_uid');
    if (!existing) throw new Error('instance row vanished during store');
    if (existing.sha256 === instance.sha256 && existing.series_uid === instance.series_uid) return { kind: 'identical' };
    if (!overwrite || existing.series_uid !== instance.series_uid) return { kind: 'conflict' };
    await trx('instances').where({ sop_instance_uid: instance.sop_instance_uid }).update(row);
    return { kind: 'replaced', oldBlobKey: existing.blob_key };
  });
}

/** Deletes instance rows (and series/studies left empty); returns the blob keys to remove. */
export async function deleteInstances(db: Db, where: { study_uid: string; series_uid?: string; sop_instance_uid?: string }): Promise<string[]> {
  return db.transaction(async (trx) => {
    const rows: { blob_key: string }[] = await trx('instances').where(where).del().returning('blob_key');
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
