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
