import type { Db } from '../db/knex.js';

// The export's reads and writes of the index and of its own tables
// (migrations/20261203170000_export.ts).

/** The study a series belongs to, when the index holds the series (who may see it is checked by the reads that follow). */
export async function studyOfSeries(db: Db, seriesUid: string): Promise<string | undefined> {
  const row = await db('series').where({ series_uid: seriesUid }).first('study_uid');
  return row?.study_uid;
}
