import type { Knex } from 'knex';

// The change feed shows a change only to a caller who may see its study and
// series (server/access.ts). While they exist, their rows say; once deleted
// they say nothing, so a "deleted" change keeps the labels its study and
// series had when they went, and the feed reads those.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table changes add column study_labels text[], add column series_labels text[]');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table changes drop column study_labels, drop column series_labels');
}
