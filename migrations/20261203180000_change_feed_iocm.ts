import type { Knex } from 'knex';

// The change feed at /api/changefeed and the rest of IHE IOCM.
//
// - A relabel appends one change row per instance it affects (server/db/labels.ts),
//   keeping the labels the study and series had before it (a follower that
//   saw an instance before the relabel hid it is told to withdraw it) and
//   whether the study's or the series' labels changed (`relabel_level`).
// - `restored`: a rejection undone by an admin; a purge of rejected data
//   after its retention period appends `deleted` rows like any deletion.
// - `at` is searched by the feed's startTime, replacements by the state of
//   an entry (was the instance replaced since?).
// - `taken`: when the row took its `seq` (clock_timestamp(), not the
//   transaction's start). A reader stops before the first row taken after
//   the oldest running writer began: that writer may still commit a lower
//   `seq`. The writer's xid alone does not tell, as a transaction can be
//   given its xid before another and take its `seq` after it. Rows written
//   before this migration have none and count as old.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table changes add column taken timestamptz');
  await knex.raw('alter table changes alter column taken set default clock_timestamp()');
  await knex.raw(`alter table changes add column study_labels_before text[], add column series_labels_before text[],
    add column relabel_level text check (relabel_level in ('study', 'series'))`);
  await knex.raw('alter table changes drop constraint changes_kind_check');
  await knex.raw(
    `alter table changes add constraint changes_kind_check check (kind in ('stored', 'replaced', 'deleted', 'relabelled', 'rejected', 'restored'))`,
  );
  // Neither costs a store much: a BRIN index is a summary per block range
  // (`at` grows with `seq`, near enough), and only replacements enter the other.
  await knex.raw('create index changes_at on changes using brin (at)');
  await knex.raw(`create index changes_replaced on changes (sop_instance_uid, seq) where kind = 'replaced'`);
  await knex.raw('create index rejections_at on rejections (at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index rejections_at');
  await knex.raw('drop index changes_replaced');
  await knex.raw('drop index changes_at');
  await knex.raw(`delete from changes where kind = 'restored'`);
  await knex.raw('alter table changes drop constraint changes_kind_check');
  await knex.raw(`alter table changes add constraint changes_kind_check check (kind in ('stored', 'replaced', 'deleted', 'relabelled', 'rejected'))`);
  await knex.raw('alter table changes drop column study_labels_before, drop column series_labels_before, drop column relabel_level, drop column taken');
}
