import type { Knex } from 'knex';

// The index: one row per study, series and instance. Attributes QIDO matches
// on are real columns with indexes; everything else rides in the JSON columns.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('studies', (t) => {
    t.text('study_uid').primary();
    t.text('patient_id');
    t.text('patient_name');
    t.text('patient_birth_date');
    t.text('patient_sex');
    t.text('study_date');
    t.text('study_time');
    t.text('accession_number');
    t.text('study_id');
    t.text('referring_physician_name');
    t.text('study_description');
    t.jsonb('attributes').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('series', (t) => {
    t.text('series_uid').primary();
    t.text('study_uid').notNullable().references('studies.study_uid').onDelete('CASCADE');
    t.text('modality');
    t.integer('series_number');
    t.text('series_description');
    t.text('body_part_examined');
    t.text('pps_start_date');
    t.text('pps_start_time');
    t.jsonb('attributes').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['study_uid']);
    t.index(['modality']);
  });
  await knex.schema.createTable('instances', (t) => {
    t.text('sop_instance_uid').primary();
    t.text('series_uid').notNullable().references('series.series_uid').onDelete('CASCADE');
    t.text('study_uid').notNullable();
    t.text('sop_class_uid').notNullable();
    t.integer('instance_number');
    t.text('transfer_syntax_uid').notNullable();
    t.text('blob_key').notNullable().unique();
    t.bigInteger('size').notNullable();
    t.text('sha256').notNullable();
    t.integer('number_of_frames');
    t.integer('rows');
    t.integer('columns');
    t.integer('bits_allocated');
    t.integer('samples_per_pixel');
    // Byte ranges inside the blob: top-level bulk data elements, and the
    // pixel data split into frames, so frames and bulk data are ranged reads.
    t.jsonb('bulk').notNullable();
    t.jsonb('frames');
    // The instance's DICOM JSON (bulk data as BulkDataURI), kept as text so
    // /metadata is a concatenation, never a parse (DESIGN.md).
    t.text('metadata').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['series_uid', 'instance_number']);
    t.index(['study_uid']);
  });
  await knex.raw('create index studies_patient_id on studies (patient_id)');
  await knex.raw('create index studies_patient_name on studies (upper(patient_name) text_pattern_ops)');
  await knex.raw('create index studies_study_date on studies (study_date)');
  await knex.raw('create index studies_accession on studies (accession_number)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('instances');
  await knex.schema.dropTable('series');
  await knex.schema.dropTable('studies');
}
