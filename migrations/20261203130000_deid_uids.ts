import type { Knex } from 'knex';

// De-identified views show pseudonymous UIDs, keyed hashes of the originals
// that cannot be reversed. A caller of such a view sends them back in URLs
// and queries, so Cairn keeps, per project, each pseudonymous study, series
// and SOP Instance UID it has shown, with the original it stands for. The
// key that makes them is never stored here.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('deid_uids', (t) => {
    t.text('project').notNullable();
    t.text('pseudo_uid').notNullable();
    t.text('original_uid').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['project', 'pseudo_uid']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('deid_uids');
}
