import type { Db } from './knex.js';

/** What the index records about an instance's blob. */
export interface IndexedBlob {
  sopInstanceUid: string;
  blobKey: string;
  size: number;
  sha256: string;
}

/**
 * One page of the whole index in SOP Instance UID order after `after` (keyset
 * paging, so a walk over any archive holds one page), for the storage tools.
 * Not scoped by a caller: only operators' commands read it.
 */
export function indexedBlobsAfter(db: Db, after: string, limit: number): Promise<IndexedBlob[]> {
  return db('instances')
    .where('sop_instance_uid', '>', after)
    .orderBy('sop_instance_uid')
    .limit(limit)
    .select('sop_instance_uid as sopInstanceUid', 'blob_key as blobKey', 'size', 'sha256');
}

/** What the index holds under one SOP Instance UID, for an import's check that a file is already stored. Not scoped by a caller: only operators' commands read it. */
export async function indexedInstance(
  db: Db,
  sopInstanceUid: string,
): Promise<{ studyUid: string; seriesUid: string; size: number; sha256: string } | undefined> {
  return db('instances').where('sop_instance_uid', sopInstanceUid).first('study_uid as studyUid', 'series_uid as seriesUid', 'size', 'sha256');
}
