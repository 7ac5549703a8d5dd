import { visible, type Caller } from '../access.js';
import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';

// The collection tables (migrations/20261203160000_collections.ts): reads and
// writes for the management API and the collection's DICOMweb root.

export interface Collection {
  id: string;
  name: string;
  description: string | null;
  profile: string;
  project: string;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** The QIDO-RS query the collection was made from, when it was. */
  query: string | null;
  /** Studies stored later that match `query` join, and members it no longer finds leave (grow.ts); false: frozen. */
  live: boolean;
}

export interface Member {
  studyUid: string;
  /** Null: the whole study. */
  seriesUid: string | null;
  addedBy: string | null;
  addedAt: Date;
}

export interface Grant {
  id: number;
  kind: 'user' | 'role';
  name: string;
  grantedBy: string | null;
  grantedAt: Date;
}

export interface Share {
  id: string;
  collectionId: string;
  recipient: string | null;
  expiresAt: Date;
  createdBy: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  revokedBy: string | null;
}

/** Columns read, as `column as property`: rows leave here as domain objects. */
const COLLECTION = [
  'id',
  'name',
  'description',
  'profile',
  'project',
  'created_by as createdBy',
  'created_at as createdAt',
  'updated_at as updatedAt',
  'query',
  'live',
];
const SHARE = [
  'id',
  'collection_id as collectionId',
  'recipient',
  'expires_at as expiresAt',
  'created_by as createdBy',
  'created_at as createdAt',
  'revoked_at as revokedAt',
  'revoked_by as revokedBy',
];
const GRANT = ['id', 'kind', 'name', 'granted_by as grantedBy', 'granted_at as grantedAt'];

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A new member: a whole study (no series) or one series; `byQuery` when the live query found it, not named by UID. */
export interface NewMember {
  studyUid: string;
  seriesUid: string | null;
  byQuery?: boolean;
}

/** What a collection made from a query keeps of it, to grow (grow.ts). */
export interface QueryOrigin {
  query: string;
  live: boolean;
  /** Its maker's roles and clearances, with which the query is evaluated from now on. */
  makerRoles: readonly string[];
  makerClearances: readonly string[];
  /** The change sequence position the query was resolved after. */
  feedSeq: number;
}

export async function insertCollection(
  db: Db,
  c: { name: string; description: string | null; profile: string; project?: string; createdBy: string; origin?: QueryOrigin },
  members: NewMember[],
): Promise<Collection> {
  return db.transaction(async (trx) => {
    const o = c.origin;
    const [row] = await trx('collections')
      .insert({
        name: c.name,
        description: c.description,
        profile: c.profile,
        project: c.project ?? '',
        created_by: c.createdBy,
        ...(o ? { query: o.query, live: o.live, maker_roles: [...o.makerRoles], maker_clearances: [...o.makerClearances], feed_seq: o.feedSeq } : {}),
      })
      .returning<Collection[]>(COLLECTION);
    // Without a project of its own, a collection's pseudonyms are its own: the project is named after it.
    if (!c.project) {
      row.project = `collection-${row.id}`;
      await trx('collections').where({ id: row.id }).update({ project: row.project });
    }
    await addMemberRows(trx, row.id, members, c.createdBy);
    return row;
  });
}

export async function findCollection(db: Db, id: string): Promise<Collection | undefined> {
  if (!UUID.test(id)) return undefined;
  return db('collections').where({ id }).first<Collection | undefined>(COLLECTION);
}

/** Every collection, newest first, with its member count. */
export async function listCollections(db: Db): Promise<(Collection & { members: number })[]> {
  return db('collections as c')
    .select(COLLECTION.map((c) => `c.${c}`))
    .select(db.raw('(select count(*)::int from collection_members m where m.collection_id = c.id) as members'))
    .orderBy('c.created_at', 'desc');
}

export async function updateCollection(
  db: Db,
  id: string,
  change: Partial<Pick<Collection, 'name' | 'description' | 'profile' | 'project' | 'live'>>,
): Promise<Collection | undefined> {
  // A frozen collection gives up its lease too: no replica brings it further.
  const frozen = change.live === false ? { lease_owner: null, lease_until: null } : {};
  const [row] = await db('collections')
    .where({ id })
    .update({ ...change, ...frozen, updated_at: db.fn.now() })
    .returning<Collection[]>(COLLECTION);
  return row;
}

export async function deleteCollection(db: Db, id: string): Promise<boolean> {
  return (await db('collections').where({ id }).del()) === 1;
}

export async function listMembers(db: Db, id: string): Promise<Member[]> {
  return db('collection_members')
    .where({ collection_id: id })
    .select({ studyUid: 'study_uid', seriesUid: 'series_uid', addedBy: 'added_by', addedAt: 'added_at' })
    .orderBy([{ column: 'added_at' }, { column: 'study_uid' }, { column: 'series_uid' }]);
}

/**
 * Adds member rows; the number that were not members already. A study the
 * live query found and then named by UID becomes a member by UID: it stays
 * when the query no longer finds it.
 */
async function addMemberRows(db: Db | Knex.Transaction, id: string, members: NewMember[], by: string): Promise<number> {
  if (!members.length) return 0;
  const r = await db.raw(
    `insert into collection_members (collection_id, study_uid, series_uid, added_by, by_query)
      select ?::uuid, m.study_uid, m.series_uid, ?, m.by_query from unnest(?::text[], ?::text[], ?::boolean[]) as m(study_uid, series_uid, by_query)
      on conflict (collection_id, study_uid, coalesce(series_uid, '')) do update set by_query = false
        where collection_members.by_query and not excluded.by_query
      returning (xmax = 0) as inserted`,
    [id, by, members.map((m) => m.studyUid), members.map((m) => m.seriesUid), members.map((m) => m.byQuery === true)] as never,
  );
  return (r.rows as { inserted: boolean }[]).filter((x) => x.inserted).length;
}

/** Adds members; the number that were not members already. */
export function addMembers(db: Db | Knex.Transaction, id: string, members: NewMember[], by: string): Promise<number> {
  return addMemberRows(db, id, members, by);
}

/** Removes whole-study members (with the series members of those studies) and series members; the number removed. */
export async function removeMembers(db: Db, id: string, studies: string[], series: string[]): Promise<number> {
  return db('collection_members')
    .where({ collection_id: id })
    .where((w) => w.whereIn('study_uid', studies).orWhereIn('series_uid', series))
    .del();
}

/** The studies among `uids` that `caller` may see. */
export async function visibleStudies(db: Db, caller: Caller, uids: string[]): Promise<string[]> {
  if (!uids.length) return [];
  const rows: { study_uid: string }[] = await db('studies as s')
    .whereIn('s.study_uid', uids)
    .where(visible(db, { study: 's' }, caller))
    .select('s.study_uid');
  caller.touched.noteAll(rows.map((r) => ({ studyUid: r.study_uid })));
  return rows.map((r) => r.study_uid);
}

/** The series among `uids` that `caller` may see, each with its study. */
export async function visibleSeries(db: Db, caller: Caller, uids: string[]): Promise<{ studyUid: string; seriesUid: string }[]> {
  if (!uids.length) return [];
  const rows: { studyUid: string; seriesUid: string }[] = await db('series as se')
    .join('studies as s', 's.study_uid', 'se.study_uid')
    .whereIn('se.series_uid', uids)
    .where(visible(db, { study: 's', series: 'se' }, caller))
    .select({ studyUid: 'se.study_uid', seriesUid: 'se.series_uid' });
  caller.touched.noteAll(rows);
  return rows;
}

export async function listGrants(db: Db, id: string): Promise<Grant[]> {
  return db('collection_grants').where({ collection_id: id }).select(GRANT).orderBy('id');
}

/** Grants the collection to a user or a role; the grant, and whether it is new. */
export async function addGrant(db: Db, id: string, g: { kind: 'user' | 'role'; name: string; by: string }): Promise<{ grant: Grant; created: boolean }> {
  const [row] = await db('collection_grants')
    .insert({ collection_id: id, kind: g.kind, name: g.name, granted_by: g.by })
    .onConflict(['collection_id', 'kind', 'name'])
    .ignore()
    .returning<Grant[]>(GRANT);
  if (row) return { grant: row, created: true };
  const existing = await db('collection_grants').where({ collection_id: id, kind: g.kind, name: g.name }).first<Grant>(GRANT);
  return { grant: existing, created: false };
}

export async function deleteGrant(db: Db, id: string, grantId: number): Promise<boolean> {
  return (await db('collection_grants').where({ collection_id: id, id: grantId }).del()) === 1;
}

/** Whether a principal is granted the collection, by its name or one of its roles. */
export async function isGranted(db: Db, id: string, sub: string, roles: readonly string[]): Promise<boolean> {
  const row = await db('collection_grants')
    .where({ collection_id: id })
    .where((w) => w.where({ kind: 'user', name: sub }).orWhere((o) => o.where('kind', 'role').whereIn('name', [...roles])))
    .first('id');
  return row !== undefined;
}

export async function insertShare(
  db: Db,
  s: { collectionId: string; tokenSha256: Buffer; recipient: string | null; expiresAt: Date; createdBy: string },
): Promise<Share> {
  const [row] = await db('collection_shares')
    .insert({ collection_id: s.collectionId, token_sha256: s.tokenSha256, recipient: s.recipient, expires_at: s.expiresAt, created_by: s.createdBy })
    .returning<Share[]>(SHARE);
  return row;
}

export async function listShares(db: Db, collectionId: string): Promise<Share[]> {
  return db('collection_shares').where({ collection_id: collectionId }).select(SHARE).orderBy('created_at', 'desc');
}

/** A share with its token's hash, as the check of each request reads it. */
export async function findShare(db: Db, id: string): Promise<(Share & { tokenSha256: Buffer }) | undefined> {
  if (!UUID.test(id)) return undefined;
  return db('collection_shares')
    .where({ id })
    .first<(Share & { tokenSha256: Buffer }) | undefined>([...SHARE, 'token_sha256 as tokenSha256']);
}

/** Revokes a share; undefined when the collection has no such share, else whether it was open until now. */
export async function revokeShare(db: Db, collectionId: string, id: string, by: string): Promise<{ revokedNow: boolean } | undefined> {
  if (!UUID.test(id)) return undefined;
  const done = await db('collection_shares')
    .where({ id, collection_id: collectionId })
    .whereNull('revoked_at')
    .update({ revoked_at: db.fn.now(), revoked_by: by });
  if (done === 1) return { revokedNow: true };
  const exists = await db('collection_shares').where({ id, collection_id: collectionId }).first('id');
  return exists ? { revokedNow: false } : undefined;
}

/** A live collection as the runner that grows it reads it (grow.ts). */
export interface LiveCollection {
  id: string;
  query: string;
  createdBy: string;
  makerRoles: string[];
  makerClearances: string[];
  feedSeq: number;
}

/**
 * Takes (or keeps) for `seconds` the live collections behind the newest
 * change whose lease is free, ran out or is already this owner's, at most
 * `limit`. `for update skip locked`: replicas looking at once take different
 * collections and never wait on each other. A collection already at the
 * newest change is not touched, so an idle archive writes nothing.
 */
export async function claimLiveCollections(db: Db, owner: string, seconds: number, limit: number): Promise<LiveCollection[]> {
  const r = await db.raw(
    `update collections c set lease_owner = ?, lease_until = now() + make_interval(secs => ?)
      where c.id in (select id from collections
        where live and coalesce(feed_seq, 0) < (select coalesce(max(seq), 0) from changes)
          and (lease_owner = ? or lease_until is null or lease_until < now())
        order by id limit ? for update skip locked)
      returning c.id, c.query, c.created_by, c.maker_roles, c.maker_clearances, c.feed_seq`,
    [owner, seconds, owner, limit],
  );
  return (r.rows as Record<string, unknown>[]).map((x) => ({
    id: String(x.id),
    query: String(x.query ?? ''),
    createdBy: String(x.created_by ?? ''),
    makerRoles: (x.maker_roles as string[] | null) ?? [],
    makerClearances: (x.maker_clearances as string[] | null) ?? [],
    feedSeq: Number(x.feed_seq ?? 0),
  }));
}

/**
 * What the live query found among `studies` (the studies of the changes up
 * to `next`): those in `matched` join, members it found before and no longer
 * finds leave, and the collection's position moves to `next`; all at once,
 * and only while `owner` holds the collection (undefined when it does not).
 */
export async function settleGrowth(
  db: Db,
  c: { id: string; createdBy: string },
  owner: string,
  studies: readonly string[],
  matched: readonly string[],
  next: number,
): Promise<{ joined: string[]; left: string[] } | undefined> {
  return db.transaction(async (trx) => {
    const held = await trx('collections').where({ id: c.id, lease_owner: owner, live: true }).update({ feed_seq: next });
    if (held !== 1) return undefined;
    const found = new Set(matched);
    const gone = studies.filter((s) => !found.has(s));
    const left: { study_uid: string }[] = gone.length
      ? await trx('collection_members').where({ collection_id: c.id, by_query: true }).whereIn('study_uid', gone).del().returning('study_uid')
      : [];
    const joined: { study_uid: string }[] = matched.length
      ? (
          await trx.raw(
            `insert into collection_members (collection_id, study_uid, series_uid, added_by, by_query)
              select ?::uuid, u, null, ?, true from unnest(?::text[]) as u
              on conflict (collection_id, study_uid, coalesce(series_uid, '')) do nothing returning study_uid`,
            [c.id, c.createdBy, [...matched]] as never,
          )
        ).rows
      : [];
    return { joined: joined.map((x) => x.study_uid), left: [...new Set(left.map((x) => x.study_uid))] };
  });
}

/** Gives up every collection this owner holds (a graceful stop): another replica takes them at once. */
export async function releaseLiveCollections(db: Db, owner: string): Promise<void> {
  await db('collections').where({ lease_owner: owner }).update({ lease_owner: null, lease_until: null });
}
