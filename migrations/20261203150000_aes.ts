import type { Knex } from 'knex';

// Application entities (DIMSE peers) as principals, managed like user
// accounts (`npm run ae`, /api/aes): the calling AE title, the address it
// must call from and the port it listens on, the roles and clearances it
// acts under, and whether a C-MOVE may name it as its destination. Every
// replica reads this table, remembered for DIMSE_AES_REFRESH_SECONDS, unless
// the registry is configured by DIMSE_AES or DIMSE_AES_FILE instead.
//
// The title "*" stands for every calling AE not registered by its own title
// (roles and clearances only); without it, unregistered AEs are refused.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table aes (
    title text primary key,
    host text,
    port integer check (port between 1 and 65535),
    roles text[] not null default '{}',
    clearances text[] not null default '{}',
    move_destination boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (not move_destination or (host is not null and port is not null)),
    check (title <> '*' or (host is null and port is null))
  )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('aes');
}
