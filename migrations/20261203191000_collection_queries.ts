import type { Knex } from 'knex';

// Collections that grow, and members that go with their studies
// (server/collections/grow.ts).
//
// - A collection made from a QIDO query keeps the query and, unless frozen,
//   stays "live": studies stored (or relabelled, rejected, restored) later
//   are matched against it, as its maker saw the archive when making it
//   (maker_roles, maker_clearances: a steward never gains a study it could
//   not see), and join or leave. `feed_seq` is how far down the change
//   sequence (the `changes` table) the collection has been brought;
//   `lease_owner` until `lease_until` is the replica bringing it there, so two
//   replicas never do the same work.
// - A member row says whether it came from the live query (`by_query`):
//   only those leave when their study stops matching; a study or series named
//   by UID stays a member until removed by hand or deleted.
// - A member row goes when its study (or series) row is deleted, in the same
//   statement, whatever deleted it (a deletion, a purge of rejected data): a
//   study stored again later under the same UID does not come back into a
//   collection by itself.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table collections
    add column query text,
    add column live boolean not null default false,
    add column maker_roles text[],
    add column maker_clearances text[],
    add column feed_seq bigint,
    add column lease_owner text,
    add column lease_until timestamptz`);
  await knex.raw('create index collections_live on collections (lease_until) where live');
  await knex.raw('alter table collection_members add column by_query boolean not null default false');
  await knex.raw('create index collection_members_study on collection_members (study_uid)');
  await knex.raw('create index collection_members_series on collection_members (series_uid) where series_uid is not null');
  await knex.raw(`create function collection_members_gone_studies() returns trigger language plpgsql as $$
    begin
      delete from collection_members m using gone where m.study_uid = gone.study_uid;
      return null;
    end $$`);
  await knex.raw(`create function collection_members_gone_series() returns trigger language plpgsql as $$
    begin
      delete from collection_members m using gone where m.series_uid = gone.series_uid;
      return null;
    end $$`);
  await knex.raw(`create trigger collection_members_gone after delete on studies
    referencing old table as gone for each statement execute function collection_members_gone_studies()`);
  await knex.raw(`create trigger collection_members_gone after delete on series
    referencing old table as gone for each statement execute function collection_members_gone_series()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop trigger collection_members_gone on series');
  await knex.raw('drop trigger collection_members_gone on studies');
  await knex.raw('drop function collection_members_gone_series()');
  await knex.raw('drop function collection_members_gone_studies()');
  await knex.raw('drop index collection_members_series');
  await knex.raw('drop index collection_members_study');
  await knex.raw('alter table collection_members drop column by_query');
  await knex.raw('drop index collections_live');
  await knex.raw(`alter table collections drop column query, drop column live, drop column maker_roles, drop column maker_clearances,
    drop column feed_seq, drop column lease_owner, drop column lease_until`);
}
