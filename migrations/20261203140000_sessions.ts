import type { Knex } from 'knex';

// Sessions of the login page and revoked bearer tokens, so that both can be
// ended before they expire.
//
// A session cookie carries the id of its row here (its `sid`); every replica
// checks that id against this table (with a short cache), so logging out
// ends a session everywhere. Changing an account's roles or clearances, or
// removing it, ends all of its sessions: triggers on `users` do that, so it
// holds whoever changes the row (the `npm run user` command, an admin API,
// an operator with psql). The rows stay after they end, for the record.
//
// A bearer token is revoked by its `jti` claim; a revoked token is refused
// until its own expiry, then the row has no more use.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sessions', (t) => {
    t.text('id').primary();
    t.text('username').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true });
    t.text('revoked_reason');
    t.text('client');
  });
  await knex.raw('create index sessions_open_by_user on sessions (username) where revoked_at is null');
  await knex.schema.createTable('revoked_tokens', (t) => {
    t.text('jti').primary();
    t.timestamp('revoked_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('revoked_by');
    t.text('reason');
  });
  await knex.raw(`
    create function sessions_end_with_account() returns trigger language plpgsql as $$
    begin
      update sessions set revoked_at = now(), revoked_reason = tg_argv[0]
        where username = old.username and revoked_at is null;
      return null;
    end $$`);
  await knex.raw(`create trigger users_removed_end_sessions after delete on users
    for each row execute function sessions_end_with_account('account removed')`);
  await knex.raw(`create trigger users_changed_end_sessions after update on users
    for each row when (old.roles is distinct from new.roles or old.clearances is distinct from new.clearances or old.username is distinct from new.username)
    execute function sessions_end_with_account('roles or clearances changed')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop trigger users_changed_end_sessions on users');
  await knex.raw('drop trigger users_removed_end_sessions on users');
  await knex.raw('drop function sessions_end_with_account()');
  await knex.schema.dropTable('revoked_tokens');
  await knex.schema.dropTable('sessions');
}
