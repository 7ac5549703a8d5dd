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
  /**
   * The instance now, as this caller sees it: `current`; `replaced` (a later
   * change replaced the version this one wrote); `rejected` (IHE IOCM);
   * `deleted` (gone, or out of the caller's view: hidden looks like missing).
   * Null for a change of a whole study or series.
   */
  state: ChangeState | null;
  /** The instance's stored DICOM JSON text, when asked for and the instance is current or replaced. */
  metadata?: string;
}

export type ChangeState = 'current' | 'replaced' | 'rejected' | 'deleted';

export interface ChangePage {
  changes: Change[];
  /** Where the next read starts: past every change this read looked at, shown or not. */
  next: number;
}

export interface ReadOptions {
  /** Only changes of one instance each (the change feed at /api/changefeed lists nothing else). */
  instancesOnly?: boolean;
  /**
   * Also each relabel the caller was cleared for before it, though not after:
   * it tells a follower to withdraw an instance it may no longer see.
   */
  withdrawals?: boolean;
  /** Only changes written at or after `from` and before `to`. */
  from?: Date;
  to?: Date;
  /** The instances' metadata, for the changes whose instance the caller sees now. */
  metadata?: boolean;
}

/** How many rows one read looks at for each row it may return (rows the caller may not follow are skipped). */
const SCAN_FACTOR = 10;

/**
 * The changes after `since` that the caller may follow, at most `limit`.
 *
 * `seq` is handed out when a row is written, not when it commits, so a row of
 * a slow transaction may appear below one already read. The read therefore
 * stops before the first row written by a transaction not older than the
 * oldest one still running in this database when the read starts, or taken
 * after that one began (a transaction given its xid first may take its `seq`
 * after another's): a follower that goes on from `next` does not step over
 * a change. Only this database's transactions count (pg_stat_activity), not
 * the snapshot's xmin, which any transaction of the cluster holds back. One
 * that was running at the snapshot and is gone from pg_stat_activity when it
 * is read (it ended in between) may have been of this database, and when it
 * began is unknown: that read then passes no row taken since the migration
 * that added `taken`, and the next read goes on.
 *
 * A change is shown when its study and series are cleared for the caller by
 * their live rows' labels, or, once deleted, by the labels the deletion kept.
 * A change of a study or series deleted since, other than the deletion, has
 * neither and is shown only to a caller who broke the glass. With
 * `withdrawals`, a relabel is shown as well when the labels before it
 * cleared the caller (it names nothing the caller could not see then).
 */
export async function readChanges(db: Db, caller: Caller, since: number, limit: number, opts: ReadOptions = {}): Promise<ChangePage> {
  const page = await readPage(db, caller, since, limit, opts);
  caller.touched.noteAll(
    page.changes.map((c) => ({ studyUid: c.studyUid, seriesUid: c.seriesUid ?? undefined, sopInstanceUid: c.sopInstanceUid ?? undefined })),
  );
  return page;
}

async function readPage(db: Db, caller: Caller, since: number, limit: number, opts: ReadOptions): Promise<ChangePage> {
  const scan = Math.min(limit * SCAN_FACTOR, 10_000);
  const start = opts.from ? Math.max(since, await firstAt(db, opts.from, since)) : since;
  const withdrawn = opts.withdrawals
    ? db.raw(`(c.kind = 'relabelled' and c.study_labels_before is not null and ?)`, [visibleChange(db, { study: 'bst', series: 'bse' }, caller)])
    : db.raw('false');
  const result = await db.raw(
    `with w as (select * from changes where seq > ? order by seq limit ?),
      activity as (select backend_xid::text::bigint as xid, xact_start, datname = current_database() as here from pg_stat_activity where backend_xid is not null),
      xip as (select x, (x::text::numeric % 4294967296)::bigint as xid from pg_snapshot_xip(pg_current_snapshot()) as x),
      running as (select min(xip.x) as lo, case when bool_or(a.xid is null) then '-infinity'::timestamptz else min(a.xact_start) end as began
        from xip left join activity a on a.xid = xip.xid where coalesce(a.here, true)),
      cut as (select min(w.seq) as seq from w, running where w.tx >= running.lo or w.taken >= running.began),
      safe as (select w.* from w, cut where cut.seq is null or w.seq < cut.seq),
      shown as (
        select c.seq, c.at, c.kind, c.study_uid, c.series_uid, c.sop_instance_uid, s.state,
            case when ?::boolean and s.state in ('current', 'replaced') then li.metadata end as metadata
          from safe c
          left join studies lst on lst.study_uid = c.study_uid
          left join series lse on lse.series_uid = c.series_uid
          left join instances li on li.sop_instance_uid = c.sop_instance_uid
          cross join lateral (select coalesce(lst.labels, c.study_labels) as labels) cst
          cross join lateral (select case when c.series_uid is null then '{}'::text[] else coalesce(lse.labels, c.series_labels) end as labels) cse
          cross join lateral (select c.study_labels_before as labels) bst
          cross join lateral (select coalesce(c.series_labels_before, '{}'::text[]) as labels) bse
          cross join lateral (select case
              when c.sop_instance_uid is null then null
              when li.sop_instance_uid is null or li.series_uid is distinct from c.series_uid or lse.series_uid is null or not coalesce(?, false) then 'deleted'
              when li.rejected then 'rejected'
              when exists (select 1 from changes later where later.sop_instance_uid = c.sop_instance_uid and later.seq > c.seq and later.kind = 'replaced') then 'replaced'
              else 'current' end as state) s
          where (coalesce(?, false) or ?)
            and (not ?::boolean or c.sop_instance_uid is not null)
            and (?::timestamptz is null or c.at >= ?::timestamptz)
            and (?::timestamptz is null or c.at < ?::timestamptz)
          order by c.seq limit ?)
    select (select max(seq) from safe) as scanned, (select coalesce(json_agg(shown order by seq), '[]') from shown) as rows`,
    [
      start,
      scan,
      opts.metadata === true,
      visibleChange(db, { study: 'lst', series: 'lse' }, caller),
      visibleChange(db, { study: 'cst', series: 'cse' }, caller),
      withdrawn,
      opts.instancesOnly === true,
      opts.from ?? null,
      opts.from ?? null,
      opts.to ?? null,
      opts.to ?? null,
      limit,
    ],
  );
  const { scanned, rows } = result.rows[0] as {
    scanned: number | null;
    rows: {
      seq: number;
      at: string;
      kind: string;
      study_uid: string;
      series_uid: string | null;
      sop_instance_uid: string | null;
      state: ChangeState | null;
      metadata: string | null;
    }[];
  };
  const changes = rows.map(
    (r): Change => ({
      seq: Number(r.seq),
      at: new Date(r.at),
      kind: r.kind,
      studyUid: r.study_uid,
      seriesUid: r.series_uid,
      sopInstanceUid: r.sop_instance_uid,
      state: r.state,
      ...(r.metadata !== null ? { metadata: r.metadata } : {}),
    }),
  );
  const next = changes.length === limit ? changes[changes.length - 1].seq : Number(scanned ?? start);
  return { changes, next };
}

/** Where a read from `from` on starts: before the first change written at or after it (or at the last one, when none was). */
async function firstAt(db: Db, from: Date, since: number): Promise<number> {
  const row = await db('changes').where('at', '>=', from).min<{ seq: string | null }>('seq as seq').first();
  if (row?.seq !== null && row?.seq !== undefined) return Number(row.seq) - 1;
  const last = await db('changes').max<{ seq: string | null }>('seq as seq').first();
  return Math.max(since, Number(last?.seq ?? since));
}

/** How far back the newest change is looked for at a time. */
const LATEST_WINDOW = 1000;

/**
 * The newest change the caller may follow and a follower may start after
 * (none still being committed below it), or undefined when there is none.
 */
export async function latestChange(db: Db, caller: Caller, opts: ReadOptions = {}): Promise<Change | undefined> {
  const last = await db('changes').max<{ seq: string | null }>('seq as seq').first();
  let end = Number(last?.seq ?? 0);
  while (end > 0) {
    const from = Math.max(end - LATEST_WINDOW, 0);
    const page = await readPage(db, caller, from, LATEST_WINDOW, opts);
    const found = page.changes.at(-1);
    if (found) {
      caller.touched.note({ studyUid: found.studyUid, seriesUid: found.seriesUid ?? undefined, sopInstanceUid: found.sopInstanceUid ?? undefined });
      return found;
    }
    end = from;
  }
  return undefined;
}
