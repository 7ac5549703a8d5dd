import { visibleSeries, type Caller } from '../access.js';
import type { Db } from './knex.js';
import type { InstanceRow } from './rows.js';

export interface Target {
  studyUid: string;
  seriesUid?: string;
  sopInstanceUid?: string;
}

export type StoredInstance = Pick<InstanceRow, 'sop_instance_uid' | 'series_uid' | 'study_uid' | 'blob_key' | 'size' | 'transfer_syntax_uid' | 'sop_class_uid'>;
export type FramedInstance = Pick<InstanceRow, 'blob_key' | 'transfer_syntax_uid' | 'frames' | 'bulk' | 'bits_allocated' | 'samples_per_pixel' | 'sop_instance_uid' | 'series_uid' | 'study_uid'>;

// Every read here is scoped by the caller's visibility (server/access.ts) and
// notes the UIDs it hands back in the caller's audit record.
function scoped(db: Db, caller: Caller, t: Target) {
  const q = db('instances').where('study_uid', t.studyUid).whereIn('series_uid', visibleSeries(db, caller, t));
  if (t.seriesUid) q.where('series_uid', t.seriesUid);
  if (t.sopInstanceUid) q.where('sop_instance_uid', t.sopInstanceUid);
  return q;
}

const ORDER = [{ column: 'series_uid' }, { column: 'instance_number', nulls: 'last' as const }, { column: 'sop_instance_uid' }];

/** The instances under a study, series or instance that the caller may see, in series and instance order. */
export async function findInstances(db: Db, caller: Caller, t: Target): Promise<StoredInstance[]> {
  const rows: StoredInstance[] = await scoped(db, caller, t).select('sop_instance_uid', 'series_uid', 'study_uid', 'blob_key', 'size', 'transfer_syntax_uid', 'sop_class_uid').orderBy(ORDER);
  caller.touched.noteAll(rows);
  return rows;
}

/** The stored DICOM JSON texts of those instances. */
export async function findMetadata(db: Db, caller: Caller, t: Target): Promise<string[]> {
  const rows: { metadata: string; sop_instance_uid: string; series_uid: string; study_uid: string }[] = await scoped(db, caller, t)
    .select('metadata', 'sop_instance_uid', 'series_uid', 'study_uid')
    .orderBy(ORDER);
  caller.touched.noteAll(rows);
  return rows.map((r) => r.metadata);
}

export async function findFramedInstance(db: Db, caller: Caller, t: Required<Target>): Promise<FramedInstance | undefined> {
  const row: FramedInstance | undefined = await scoped(db, caller, t).first('blob_key', 'transfer_syntax_uid', 'frames', 'bulk', 'bits_allocated', 'samples_per_pixel', 'sop_instance_uid', 'series_uid', 'study_uid');
  if (row) caller.touched.note(row);
  return row;
}
