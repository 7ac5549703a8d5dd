import type { Db } from '../db/knex.js';

// The export's reads and writes of the index and of its own tables
// (migrations/20261203170000_export.ts).

/** The study a series belongs to, when the index holds the series (who may see it is checked by the reads that follow). */
export async function studyOfSeries(db: Db, seriesUid: string): Promise<string | undefined> {
  const row = await db('series').where({ series_uid: seriesUid }).first('study_uid');
  return row?.study_uid;
}

/** A registered destination: a DICOMweb root that accepts STOW-RS. */
export interface Destination {
  id: string;
  name: string;
  url: string;
  token: string | null;
  createdBy: string;
  createdAt: string;
}

function destinationOf(r: Record<string, unknown>): Destination {
  return {
    id: String(r.id),
    name: String(r.name),
    url: String(r.url),
    token: (r.token as string | null) ?? null,
    createdBy: String(r.created_by),
    createdAt: new Date(r.created_at as string).toISOString(),
  };
}

export async function listDestinations(db: Db): Promise<Destination[]> {
  return (await db('export_destinations').orderBy('name')).map(destinationOf);
}

/** A destination by id or by name. */
export async function findDestination(db: Db, idOrName: string): Promise<Destination | undefined> {
  const row = await db('export_destinations').where({ id: idOrName }).orWhere({ name: idOrName }).first();
  return row ? destinationOf(row) : undefined;
}

/** Adds a destination; false when its name is taken. */
export async function addDestination(db: Db, d: Omit<Destination, 'createdAt'>): Promise<Destination | undefined> {
  const [row] = await db('export_destinations')
    .insert({ id: d.id, name: d.name, url: d.url, token: d.token, created_by: d.createdBy })
    .onConflict('name')
    .ignore()
    .returning('*');
  return row ? destinationOf(row) : undefined;
}

export async function removeDestination(db: Db, id: string): Promise<boolean> {
  return (await db('export_destinations').where({ id }).del()) > 0;
}

export type JobState = 'queued' | 'running' | 'completed' | 'cancelled';
export type ItemState = 'pending' | 'done' | 'failed' | 'withheld';

/** A push job as stored. */
export interface JobRow {
  id: string;
  destination_id: string | null;
  destination_name: string;
  sub: string;
  roles: string[];
  clearances: string[];
  break_glass: string | null;
  client: string | null;
  profile: string | null;
  state: JobState;
  total: number;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export interface NewItem {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sentUid: string;
  state: 'pending' | 'withheld';
  reason?: string;
}

/** Writes a job and its items in one transaction. */
export async function insertJob(db: Db, job: Omit<JobRow, 'state' | 'total' | 'error' | 'created_at' | 'started_at' | 'finished_at'>, items: NewItem[]) {
  await db.transaction(async (trx) => {
    await trx('export_jobs').insert({ ...job, state: 'queued', total: items.length });
    for (let i = 0; i < items.length; i += 1000)
      await trx('export_items').insert(
        items.slice(i, i + 1000).map((it, k) => ({
          job_id: job.id,
          seq: i + k,
          study_uid: it.studyUid,
          series_uid: it.seriesUid,
          sop_instance_uid: it.sopInstanceUid,
          sent_uid: it.sentUid,
          state: it.state,
          reason: it.reason ?? null,
        })),
      );
  });
}

export async function readJob(db: Db, id: string): Promise<JobRow | undefined> {
  return db('export_jobs').where({ id }).first();
}

export async function listJobs(db: Db, sub: string | undefined, limit: number): Promise<JobRow[]> {
  const q = db('export_jobs').orderBy('created_at', 'desc').limit(limit);
  if (sub !== undefined) q.where({ sub });
  return q;
}

/** How many items of a job are in each state. */
export async function itemCounts(db: Db, jobId: string): Promise<Record<ItemState, number>> {
  const counts: Record<ItemState, number> = { pending: 0, done: 0, failed: 0, withheld: 0 };
  const rows: { state: ItemState; n: string }[] = await db('export_items').where({ job_id: jobId }).groupBy('state').select('state').count({ n: '*' });
  for (const r of rows) counts[r.state] = Number(r.n);
  return counts;
}

/** The items of a job that failed or were withheld, by the UID they were to be sent under. */
export async function itemProblems(db: Db, jobId: string, limit: number): Promise<{ sentUid: string; state: ItemState; reason: string | null }[]> {
  return db('export_items')
    .where({ job_id: jobId })
    .whereIn('state', ['failed', 'withheld'])
    .orderBy('seq')
    .limit(limit)
    .select({ sentUid: 'sent_uid', state: 'state', reason: 'reason' });
}

/** Cancels a job that has not finished; false when it had. */
export async function cancelJob(db: Db, id: string): Promise<boolean> {
  const n = await db('export_jobs')
    .where({ id })
    .whereIn('state', ['queued', 'running'])
    .update({ state: 'cancelled', finished_at: db.fn.now(), lease_owner: null, lease_until: null });
  return n > 0;
}

/**
 * Takes the oldest unfinished job whose lease is free or ran out, for
 * `seconds`. `for update skip locked`: replicas looking at once take
 * different jobs and never wait on each other.
 */
export async function claimJob(db: Db, owner: string, seconds: number): Promise<JobRow | undefined> {
  const { rows } = await db.raw(
    `update export_jobs set state = 'running', lease_owner = ?, lease_until = now() + make_interval(secs => ?),
       started_at = coalesce(started_at, now())
     where id = (select id from export_jobs where state in ('queued', 'running') and (lease_until is null or lease_until < now())
                 order by created_at limit 1 for update skip locked)
     returning *`,
    [owner, seconds],
  );
  return rows[0];
}

/** Extends the lease of a job still running and held by `owner`; false when it is not (cancelled, or taken over). */
export async function renewLease(db: Db, id: string, owner: string, seconds: number): Promise<boolean> {
  const n = await db('export_jobs')
    .where({ id, lease_owner: owner, state: 'running' })
    .update({ lease_until: db.raw('now() + make_interval(secs => ?)', [seconds]) });
  return n > 0;
}

/** Gives the job up: any replica may take it after `afterSeconds` (0: at once). */
export async function releaseLease(db: Db, id: string, owner: string, afterSeconds: number): Promise<void> {
  await db('export_jobs')
    .where({ id, lease_owner: owner })
    .update({ lease_owner: null, lease_until: afterSeconds > 0 ? db.raw('now() + make_interval(secs => ?)', [afterSeconds]) : null });
}

/** Marks a job whose items are all settled as completed (with `error` when it could not run at all). */
export async function finishJob(db: Db, id: string, owner: string, error?: string): Promise<void> {
  await db.transaction(async (trx) => {
    if (error) await trx('export_items').where({ job_id: id, state: 'pending' }).update({ state: 'failed', reason: error, updated_at: trx.fn.now() });
    await trx('export_jobs')
      .where({ id, lease_owner: owner, state: 'running' })
      .update({ state: 'completed', finished_at: trx.fn.now(), lease_owner: null, lease_until: null, error: error ?? null });
  });
}

export interface ItemRow {
  seq: number;
  study_uid: string;
  series_uid: string;
  sop_instance_uid: string;
  sent_uid: string;
  attempts: number;
}

export async function pendingItems(db: Db, jobId: string, limit: number): Promise<ItemRow[]> {
  return db('export_items').where({ job_id: jobId, state: 'pending' }).orderBy('seq').limit(limit);
}

/** Settles items, or counts an attempt on those left pending. */
export async function settleItems(db: Db, jobId: string, outcomes: { seq: number; state: ItemState; reason?: string; attempted?: boolean }[]): Promise<void> {
  await db.transaction(async (trx) => {
    for (const o of outcomes)
      await trx('export_items')
        .where({ job_id: jobId, seq: o.seq })
        .update({
          state: o.state,
          reason: o.reason ?? null,
          attempts: o.attempted ? trx.raw('attempts + 1') : trx.raw('attempts'),
          updated_at: trx.fn.now(),
        });
  });
}
