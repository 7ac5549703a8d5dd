import { visibilityValues, visibleText, type Caller } from '../access.js';
import { prepared, type Db } from './knex.js';
import type { InstanceRow } from './rows.js';

export interface Target {
  studyUid: string;
  seriesUid?: string;
  sopInstanceUid?: string;
}

export type StoredInstance = Pick<InstanceRow, 'sop_instance_uid' | 'series_uid' | 'study_uid' | 'blob_key' | 'size' | 'transfer_syntax_uid' | 'sop_class_uid'>;
export type FramedInstance = Pick<
  InstanceRow,
  'blob_key' | 'transfer_syntax_uid' | 'frames' | 'bulk' | 'bits_allocated' | 'samples_per_pixel' | 'sop_instance_uid' | 'series_uid' | 'study_uid'
>;

// Every read here is scoped by the caller's visibility (server/access.ts) and
// notes the UIDs it hands back in the caller's audit record. These are the
// reads of every WADO-RS request, so each is a fixed statement per target
// level, run prepared (server/db/knex.ts): no query building per request,
// and PostgreSQL plans each once per connection.

const UIDS = ['study_uid', 'series_uid', 'sop_instance_uid'] as const;
const statements = new Map<string, string>();

async function scoped<T extends { sop_instance_uid: string; series_uid: string; study_uid: string }>(
  db: Db,
  caller: Caller,
  t: Target,
  read: string,
  columns: readonly string[],
): Promise<T[]> {
  const uids = [t.studyUid, t.seriesUid, t.sopInstanceUid];
  const depth = t.sopInstanceUid ? 3 : t.seriesUid ? 2 : 1;
  const name = `cairn_${read}_${depth}`;
  let text = statements.get(name);
  if (!text) {
    const where = UIDS.slice(0, depth)
      .map((c, i) => `i.${c} = $${i + 1}`)
      .join(' and ');
    text = `select ${columns.map((c) => `i.${c}`).join(', ')}
      from instances i join series se on se.series_uid = i.series_uid join studies st on st.study_uid = se.study_uid
      where ${where} and ${visibleText({ study: 'st', series: 'se', instance: 'i' }, depth + 1)}
      order by i.series_uid, i.instance_number nulls last, i.sop_instance_uid`;
    statements.set(name, text);
  }
  const rows = await prepared<T>(db, name, text, [...uids.slice(0, depth), ...visibilityValues(caller)]);
  caller.touched.noteAll(rows);
  return rows;
}

/** The instances under a study, series or instance that the caller may see, in series and instance order. */
export function findInstances(db: Db, caller: Caller, t: Target): Promise<StoredInstance[]> {
  return scoped<StoredInstance>(db, caller, t, 'instances', [
    'sop_instance_uid',
    'series_uid',
    'study_uid',
    'blob_key',
    'size',
    'transfer_syntax_uid',
    'sop_class_uid',
  ]);
}

/** The stored DICOM JSON texts of those instances. */
export async function findMetadata(db: Db, caller: Caller, t: Target): Promise<string[]> {
  const rows = await scoped<{ metadata: string; sop_instance_uid: string; series_uid: string; study_uid: string }>(db, caller, t, 'metadata', [
    'metadata',
    'sop_instance_uid',
    'series_uid',
    'study_uid',
  ]);
  return rows.map((r) => r.metadata);
}

export async function findFramedInstance(db: Db, caller: Caller, t: Required<Target>): Promise<FramedInstance | undefined> {
  const [row] = await scoped<FramedInstance>(db, caller, t, 'framed', [
    'blob_key',
    'transfer_syntax_uid',
    'frames',
    'bulk',
    'bits_allocated',
    'samples_per_pixel',
    'sop_instance_uid',
    'series_uid',
    'study_uid',
  ]);
  return row;
}
