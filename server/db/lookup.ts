import { visibleStudies, type Principal } from '../access.js';
import type { Db } from './knex.js';
import type { InstanceRow } from './rows.js';

export interface Target {
  studyUid: string;
  seriesUid?: string;
  sopInstanceUid?: string;
}

export type StoredInstance = Pick<InstanceRow, 'sop_instance_uid' | 'series_uid' | 'study_uid' | 'blob_key' | 'size' | 'transfer_syntax_uid' | 'sop_class_uid'>;
export type FramedInstance = Pick<InstanceRow, 'blob_key' | 'transfer_syntax_uid' | 'frames' | 'bulk' | 'bits_allocated' | 'samples_per_pixel' | 'sop_instance_uid'>;

function scoped(db: Db, principal: Principal, t: Target) {
  const q = db('instances').where('study_uid', t.studyUid).whereIn('study_uid', visibleStudies(db, principal));
  if (t.seriesUid) q.where('series_uid', t.seriesUid);
  if (t.sopInstanceUid) q.where('sop_instance_uid', t.sopInstanceUid);
  return q;
}

/** The instances under a study, series or instance that the principal may see, in series and instance order. */
export async function findInstances(db: Db, principal: Principal, t: Target): Promise<StoredInstance[]> {
  return scoped(db, principal, t)
    .select('sop_instance_uid', 'series_uid', 'study_uid', 'blob_key', 'size', 'transfer_syntax_uid', 'sop_class_uid')
    .orderBy([{ column: 'series_uid' }, { column: 'instance_number', nulls: 'last' }, { column: 'sop_instance_uid' }]);
}

/** The stored DICOM JSON texts of those instances. */
export async function findMetadata(db: Db, principal: Principal, t: Target): Promise<string[]> {
  const rows: { metadata: string }[] = await scoped(db, principal, t)
    .select('metadata')
    .orderBy([{ column: 'series_uid' }, { column: 'instance_number', nulls: 'last' }, { column: 'sop_instance_uid' }]);
  return rows.map((r) => r.metadata);
}

export async function findFramedInstance(db: Db, principal: Principal, t: Required<Target>): Promise<FramedInstance | undefined> {
  return scoped(db, principal, t).first('blob_key', 'transfer_syntax_uid', 'frames', 'bulk', 'bits_allocated', 'samples_per_pixel', 'sop_instance_uid');
}
