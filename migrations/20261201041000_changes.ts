import type { Knex } from 'knex';

// The archive's change sequence: one row per instance stored, replaced or
// deleted and per study or series relabelled, written in the same statement or
// transaction as the write itself (server/db/write.ts, server/db/labels.ts),
// so a row here exists exactly when its change committed. A change feed (or a
// replica catching up) is then a read of this table by `seq`, never a second
// write path.
//
// `seq` is handed out when a row is written, not when its transaction
// commits, so a slow transaction can commit a lower seq after a higher one is
// already visible. `tx` is the writing transaction: a reader that goes no
// further than the first row whose `tx` is not below
// pg_snapshot_xmin(pg_current_snapshot()) (a transaction that may still be
// running) never steps over a row that appears later.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table changes (
    seq bigserial primary key,
    at timestamptz not null default now(),
    tx xid8 not null default pg_current_xact_id(),
    kind text not null check (kind in ('stored', 'replaced', 'deleted', 'relabelled')),
    study_uid text not null,
    series_uid text,
    sop_instance_uid text
  )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table changes');
}
