import type { Knex } from 'knex';

// IHE IOCM rejection: a Key Object Selection Document whose title is one of
// PS3.16 CID 7010's rejection codes rejects the instances it references.
//
// `instances.rejected` is what the visibility rule (server/access.ts) reads
// per instance. `series.has_rejected` and `studies.has_rejected` are hints,
// set when any instance below was rejected and never cleared by a store: a
// row without the hint is live without looking further, and only a row with
// it costs the rule a look for one live instance below. So the common case
// (nothing rejected) reads one boolean per row, and a store into a rejected
// series cannot race a rejection into a wrong flag.
//
// `rejections` names every rejected SOP Instance UID, also those referenced
// before they arrived, so that a later store of one is refused (IOCM: a
// rejected instance does not come back by being sent again).
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table instances add column rejected boolean not null default false');
  await knex.raw('alter table series add column has_rejected boolean not null default false');
  await knex.raw('alter table studies add column has_rejected boolean not null default false');
  await knex.raw(`create table rejections (
    sop_instance_uid text primary key,
    study_uid text not null,
    series_uid text not null,
    kos_instance_uid text not null,
    code_value text not null,
    coding_scheme text not null,
    code_meaning text,
    at timestamptz not null default now()
  )`);
  await knex.raw('create index rejections_study on rejections (study_uid)');
  await knex.raw('alter table changes drop constraint changes_kind_check');
  await knex.raw(`alter table changes add constraint changes_kind_check check (kind in ('stored', 'replaced', 'deleted', 'relabelled', 'rejected'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table changes drop constraint changes_kind_check');
  await knex.raw(`alter table changes add constraint changes_kind_check check (kind in ('stored', 'replaced', 'deleted', 'relabelled'))`);
  await knex.raw('drop table rejections');
  await knex.raw('alter table studies drop column has_rejected');
  await knex.raw('alter table series drop column has_rejected');
  await knex.raw('alter table instances drop column rejected');
}
