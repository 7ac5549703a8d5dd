import { visibleChange, type Caller } from '../access.js';
import type { Db } from './knex.js';

// Reads of the change sequence (migrations/20261201041000_changes.ts) for the
// change feed: in `seq` order, only the changes the caller may follow
// (server/access.ts), and never past a change that may still be joined by a
// lower one.

export interface Change {
  seq: number;
  at: Date;
  kind: string;
  studyUid: string;
  seriesUid: string | null;
  sopInstanceUid: string | null;
}

export interface ChangePage {
  changes: Change[];
  /** Where the next read starts: past every change this read looked at, shown or not. */
  next: number;
}

/** How many rows one read looks at for each row it may return (rows the caller may not follow are skipped). */
const SCAN_FACTOR = 10;

/**
 * The changes after `since` that the caller may follow, at most `limit`.
 *
 * `seq` is handed out when a row is written, not when it commits, so a row of
 * a slow transaction may appear below one already read. The read therefore
 * stops before the first row written by a transaction not older than the
 * oldest one still running in this database when the read starts: a
 * follower that goes on from `next` does not step over a change. Only this
 * database's transactions count (pg_stat_activity), not the snapshot's xmin,
 * which any transaction of the cluster holds back.
 *
 * A change is shown when its study and series are cleared for the caller by
 * their live rows' labels, or, once deleted, by the labels the deletion kept.
 * A change of a study or series deleted since, other than the deletion, has
 * neither and is shown only to a caller who broke the glass.
 */
export async function readChanges(db: Db, caller: Caller, since: number, limit: number): Promise<ChangePage> {
  const scan = Math.min(limit * SCAN_FACTOR, 10_000);
  const result = await db.raw(
    `with w as (select * from changes where seq > ? order by seq limit ?),
      running as (select min(x) as lo from pg_snapshot_xip(pg_current_snapshot()) as x
        where (x::text::numeric % 4294967296)::bigint in
          (select backend_xid::text::bigint from pg_stat_activity where datname = current_database() and backend_xid is not null)),
      cut as (select min(w.seq) as seq from w, running where w.tx >= running.lo),
      safe as (select w.* from w, cut where cut.seq is null or w.seq < cut.seq),
      shown as (
        select c.seq, c.at, c.kind, c.study_uid, c.series_uid, c.sop_instance_uid from safe c
          left join studies lst on lst.study_uid = c.study_uid
          left join series lse on lse.series_uid = c.series_uid
          cross join lateral (select coalesce(lst.labels, c.study_labels) as labels) cst
          cross join lateral (select case when c.series_uid is null then '{}'::text[] else coalesce(lse.labels, c.series_labels) end as labels) cse
          where ?
          order by c.seq limit ?)
    select (select max(seq) from safe) as scanned, (select coalesce(json_agg(shown order by seq), '[]') from shown) as rows`,
    [since, scan, visibleChange(db, { study: 'cst', series: 'cse' }, caller), limit],
  );
  const { scanned, rows } = result.rows[0] as {
    scanned: number | null;
    rows: { seq: number; at: string; kind: string; study_uid: string; series_uid: string | null; sop_instance_uid: string | null }[];
  };
  const changes = rows.map((r) => ({
    seq: Number(r.seq),
    at: new Date(r.at),
    kind: r.kind,
    studyUid: r.study_uid,
    seriesUid: r.series_uid,
    sopInstanceUid: r.sop_instance_uid,
  }));
  caller.touched.noteAll(changes.map((c) => ({ studyUid: c.studyUid, seriesUid: c.seriesUid ?? undefined, sopInstanceUid: c.sopInstanceUid ?? undefined })));
  const next = changes.length === limit ? changes[changes.length - 1].seq : Number(scanned ?? since);
  return { changes, next };
}
