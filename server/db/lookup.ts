import { visibilityShape, visibilityValues, visibleText, type Caller } from '../access.js';
import { insertAuditFrom, readAuditValues, type ReadAudit } from './audit.js';
import { prepared, type Db } from './knex.js';
import type { Span } from './rows.js';

export interface Target {
  studyUid: string;
  seriesUid?: string;
  sopInstanceUid?: string;
}

/** The UIDs that place an instance. */
export interface InstanceUids {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
}

/** A stored instance as a whole-instance retrieve needs it. */
export interface StoredInstance extends InstanceUids {
  sopClassUid: string;
  blobKey: string;
  size: number;
  transferSyntaxUid: string;
}

/** A stored instance as a frame or bulk data retrieve needs it. */
export interface FramedInstance extends InstanceUids {
  blobKey: string;
  transferSyntaxUid: string;
  /** Each frame as the byte spans of the blob that hold it; null when they cannot be located. */
  frames: Span[][] | null;
  /** Top-level bulk data elements by tag, as byte spans of the blob. */
  bulk: Record<string, Span & { vr: string }>;
  bitsAllocated: number | null;
  samplesPerPixel: number | null;
}

// Every read here is scoped by the caller's visibility (server/access.ts) and
// notes the UIDs it hands back in the caller's audit record. These are the
// reads of every WADO-RS request, so each is a fixed statement per target
// level, run prepared (server/db/knex.ts): no query building per request,
// and PostgreSQL plans each once per connection.

const UIDS = ['study_uid', 'series_uid', 'sop_instance_uid'] as const;
const statements = new Map<string, string>();

/** Columns read, each as `[column, property]`: rows leave db/ as domain objects, mapped by the statement itself. */
type Columns = readonly (readonly [string, string])[];
const PLACE: Columns = [
  ['study_uid', 'studyUid'],
  ['series_uid', 'seriesUid'],
  ['sop_instance_uid', 'sopInstanceUid'],
];

const ORDER = 'i.series_uid, i.instance_number nulls last, i.sop_instance_uid';

async function scoped<T extends InstanceUids>(db: Db, caller: Caller, t: Target, read: string, columns: Columns, asked?: ReadAudit): Promise<T[]> {
  const uids = [t.studyUid, t.seriesUid, t.sopInstanceUid];
  const depth = t.sopInstanceUid ? 3 : t.seriesUid ? 2 : 1;
  // Only the read of one instance writes its audit row in its own statement:
  // for a series or study PostgreSQL spends more on the WITH query over many
  // rows (the metadata of 500 instances) than the second round trip costs,
  // so there the audit trail's middleware writes the row, as for any request.
  const audit = depth === 3 ? asked : undefined;
  const name = `cairn_${read}_${depth}${visibilityShape(caller)}${audit ? '_audited' : ''}`;
  const values = [...uids.slice(0, depth), ...visibilityValues(caller)];
  let text = statements.get(name);
  if (!text) {
    const where = UIDS.slice(0, depth)
      .map((c, i) => `i.${c} = $${i + 1}`)
      .join(' and ');
    const all = [...PLACE, ...columns];
    const from = `from instances i join series se on se.series_uid = i.series_uid join studies st on st.study_uid = se.study_uid
      where ${where} and ${visibleText({ study: 'st', series: 'se', instance: 'i' }, depth + 1, caller)}`;
    text = audit
      ? // One round trip for the read and its audit row: the row is written
        // from the rows found, in the same statement, so it exists before any
        // of their data can leave. The rows come back in the order of `ord`
        // as the WITH query made them; inOrder() makes sure, rather than a
        // second sort of wide rows (a series' metadata) in PostgreSQL.
        `with found as (select ${all.map(([c, p]) => `i.${c} as "${p}"`).join(', ')}, row_number() over (order by ${ORDER}) as ord ${from}),
        logged as (${insertAuditFrom('found', values.length + 1)})
        select ${all.map(([, p]) => `found."${p}"`).join(', ')}, found.ord, logged.id as "auditId", extract(epoch from logged.at)::float8 * 1000 as "auditAt"
        from found, logged`
      : `select ${all.map(([c, p]) => `i.${c} as "${p}"`).join(', ')} ${from} order by ${ORDER}`;
    statements.set(name, text);
  }
  if (!audit) {
    const rows = await prepared<T>(db, name, text, values);
    caller.touched.noteAll(rows);
    return rows;
  }
  // Every row repeats the audit row's id and time (as a number: no Date parsed per row); they are read from the first.
  const rows = inOrder(await prepared<T & { ord: string; auditId: string; auditAt: number }>(db, name, text, [...values, ...readAuditValues(audit.event)]));
  if (!rows.length) return [];
  caller.touched.noteAll(rows);
  audit.written({ id: Number(rows[0].auditId), at: new Date(rows[0].auditAt) });
  return rows;
}

/** Rows by their `ord` (bigint, as text): as they came when they came in order, which is the rule; sorted when not. */
function inOrder<R extends { ord: string }>(rows: R[]): R[] {
  for (let i = 1; i < rows.length; i++) if (Number(rows[i].ord) < Number(rows[i - 1].ord)) return rows.sort((a, b) => Number(a.ord) - Number(b.ord));
  return rows;
}

/** The instances under a study, series or instance that the caller may see, in series and instance order. */
export function findInstances(db: Db, caller: Caller, t: Target, audit?: ReadAudit): Promise<StoredInstance[]> {
  return scoped<StoredInstance>(
    db,
    caller,
    t,
    'instances',
    [
      ['blob_key', 'blobKey'],
      ['size', 'size'],
      ['transfer_syntax_uid', 'transferSyntaxUid'],
      ['sop_class_uid', 'sopClassUid'],
    ],
    audit,
  );
}

/** The stored DICOM JSON texts of those instances. */
export async function findMetadata(db: Db, caller: Caller, t: Target, audit?: ReadAudit): Promise<string[]> {
  const rows = await scoped<InstanceUids & { metadata: string }>(db, caller, t, 'metadata', [['metadata', 'metadata']], audit);
  return rows.map((r) => r.metadata);
}

export async function findFramedInstance(db: Db, caller: Caller, t: Required<Target>, audit?: ReadAudit): Promise<FramedInstance | undefined> {
  const [row] = await scoped<FramedInstance>(
    db,
    caller,
    t,
    'framed',
    [
      ['blob_key', 'blobKey'],
      ['transfer_syntax_uid', 'transferSyntaxUid'],
      ['frames', 'frames'],
      ['bulk', 'bulk'],
      ['bits_allocated', 'bitsAllocated'],
      ['samples_per_pixel', 'samplesPerPixel'],
    ],
    audit,
  );
  return row;
}

/** A stored instance as rendering needs it: its frames and bulk data in the blob, and its stored DICOM JSON. */
export interface RenderableInstance extends InstanceUids {
  blobKey: string;
  transferSyntaxUid: string;
  frames: Span[][] | null;
  bulk: Record<string, Span & { vr: string }>;
  metadata: string;
}

/** The instances under a study, series or instance that the caller may see, with what rendering reads. */
export function findRenderable(db: Db, caller: Caller, t: Target): Promise<RenderableInstance[]> {
  return scoped<RenderableInstance>(db, caller, t, 'renderable', [
    ['blob_key', 'blobKey'],
    ['transfer_syntax_uid', 'transferSyntaxUid'],
    ['frames', 'frames'],
    ['bulk', 'bulk'],
    ['metadata', 'metadata'],
  ]);
}

/** An instance as a thumbnail picks it: whether it is an image, and how many frames. */
export interface ThumbnailCandidate extends InstanceUids {
  blobKey: string;
  rows: number | null;
  numberOfFrames: number | null;
}

/** The instances under a study, series or instance that the caller may see, as a thumbnail chooses among them. */
export function findThumbnailCandidates(db: Db, caller: Caller, t: Target): Promise<ThumbnailCandidate[]> {
  return scoped<ThumbnailCandidate>(db, caller, t, 'thumbnail', [
    ['blob_key', 'blobKey'],
    ['rows', 'rows'],
    ['number_of_frames', 'numberOfFrames'],
  ]);
}
