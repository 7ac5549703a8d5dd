import type { Knex } from 'knex';

// Access control: sensitivity labels on studies and series, local
// user accounts for the login page, and the audit trail.
//
// Labels are text arrays so that visibility is one array containment test per
// row (`labels <@ clearances`, see server/access.ts); an empty array is
// contained in every set, so unlabelled rows are visible to every reader.
//
// The audit trail is append-only in the database itself, not only by API:
// triggers refuse UPDATE, DELETE and TRUNCATE, whoever asks; changing history
// takes a database operator dropping the trigger by hand.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table studies add column labels text[] not null default '{}'`);
  await knex.raw(`alter table series add column labels text[] not null default '{}'`);
  await knex.schema.createTable('users', (t) => {
    t.text('username').primary();
    t.text('password_hash').notNullable();
    t.specificType('roles', 'text[]').notNullable();
    t.specificType('clearances', 'text[]').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('sub');
    t.specificType('roles', 'text[]').notNullable();
    t.text('client');
    t.text('action').notNullable();
    t.text('method').notNullable();
    t.text('path').notNullable();
    t.integer('status').notNullable();
    t.text('outcome').notNullable();
    t.specificType('study_uids', 'text[]').notNullable();
    t.specificType('series_uids', 'text[]').notNullable();
    t.specificType('instance_uids', 'text[]').notNullable();
    t.boolean('break_glass').notNullable().defaultTo(false);
    t.text('reason');
    t.jsonb('detail');
  });
  await knex.raw('create index audit_events_at on audit_events (at)');
  await knex.raw('create index audit_events_sub on audit_events (sub, id)');
  await knex.raw('create index audit_events_action on audit_events (action, id)');
  await knex.raw('create index audit_events_study_uids on audit_events using gin (study_uids)');
  await knex.raw(`
    create function audit_events_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_events is append-only';
    end $$`);
  await knex.raw('create trigger audit_events_no_update before update or delete on audit_events for each row execute function audit_events_append_only()');
  await knex.raw('create trigger audit_events_no_truncate before truncate on audit_events for each statement execute function audit_events_append_only()');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table audit_events');
  await knex.raw('drop function audit_events_append_only()');
  await knex.schema.dropTable('users');
  await knex.raw('alter table series drop column labels');
  await knex.raw('alter table studies drop column labels');
}
