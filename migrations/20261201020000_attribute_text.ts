import type { Knex } from 'knex';

// QIDO results are spliced from stored DICOM JSON text, as /metadata is, so a
// search never has PostgreSQL print jsonb nor Node parse and re-serialise it.
// The jsonb `attributes` columns stay: sequence matching keys (PS3.4
// §C.2.2.2.6) are answered from them in SQL.
//
// The text is JSON.stringify of the attributes as jsonb hands them back (keys
// shorter first, then bytewise, at every depth), which is exactly what QIDO
// returned when it parsed the jsonb: existing rows are backfilled from the
// jsonb here, in JS, because `attributes::text` is PostgreSQL's spaced form.
const TABLES = [
  { table: 'studies', key: 'study_uid' },
  { table: 'series', key: 'series_uid' },
] as const;

const BATCH = 500;

export async function up(knex: Knex): Promise<void> {
  for (const { table, key } of TABLES) {
    await knex.schema.alterTable(table, (t) => t.text('attributes_text'));
    let after: string | undefined;
    for (;;) {
      const q = knex(table).select(key, 'attributes').orderBy(key).limit(BATCH);
      if (after !== undefined) q.where(key, '>', after);
      const rows: Record<string, unknown>[] = await q;
      if (!rows.length) break;
      await knex.raw(`update ?? as t set attributes_text = v.text from unnest(?::text[], ?::text[]) as v(k, text) where t.?? = v.k`, [
        table,
        rows.map((r) => String(r[key])),
        rows.map((r) => JSON.stringify(r.attributes)),
        key,
      ]);
      after = String(rows[rows.length - 1][key]);
    }
    await knex.schema.alterTable(table, (t) => t.dropNullable('attributes_text'));
  }
  // A study's series count and ModalitiesInStudy come from one index-only scan.
  await knex.raw('create index series_study_modality on series (study_uid, modality)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index series_study_modality');
  for (const { table } of TABLES) await knex.schema.alterTable(table, (t) => t.dropColumn('attributes_text'));
}
