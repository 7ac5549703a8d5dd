import type { Knex } from 'knex';

// Collections (server/collections/): named sets of studies and series that a
// steward shares, de-identified by the collection's profile, with users,
// roles, or an outside institution through share tokens.
//
// A member row names a whole study (series_uid null) or one series of it.
// The visibility rule (server/access.ts) reads this table by
// (collection_id, study_uid) for a call confined to a collection.
//
// A share token is never stored: only its SHA-256, so a copy of the table
// opens nothing. A share ends at its expiry, or when revoked (revoked_at).
// Removing a collection removes its members, grants and shares with it.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('collections', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable();
    t.text('description');
    t.text('profile').notNullable();
    t.text('project').notNullable();
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('collection_members', (t) => {
    t.uuid('collection_id').notNullable().references('collections.id').onDelete('CASCADE');
    t.text('study_uid').notNullable();
    t.text('series_uid');
    t.text('added_by');
    t.timestamp('added_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`create unique index collection_members_unique on collection_members (collection_id, study_uid, coalesce(series_uid, ''))`);
  await knex.schema.createTable('collection_grants', (t) => {
    t.bigIncrements('id');
    t.uuid('collection_id').notNullable().references('collections.id').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('name').notNullable();
    t.text('granted_by');
    t.timestamp('granted_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['collection_id', 'kind', 'name']);
  });
  await knex.raw(`alter table collection_grants add constraint collection_grants_kind check (kind in ('user', 'role'))`);
  await knex.schema.createTable('collection_shares', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('collection_id').notNullable().references('collections.id').onDelete('CASCADE').index();
    t.binary('token_sha256').notNullable();
    t.text('recipient');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('revoked_at', { useTz: true });
    t.text('revoked_by');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('collection_shares');
  await knex.schema.dropTable('collection_grants');
  await knex.schema.dropTable('collection_members');
  await knex.schema.dropTable('collections');
}
