import type { Knex } from 'knex';

// Pushing studies to another DICOMweb archive (server/export/): the
// destinations an administrator registered, and the push jobs with one row
// per instance and its state, so that a job survives a restart and any
// replica can finish it. A replica takes a job with a lease (lease_owner
// until lease_until), renewed after each batch; a job whose lease ran out
// (its replica stopped or died) is taken by the next replica that looks.
//
// A destination's bearer token is kept as given: Cairn must send it. It is
// never returned by the API.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('export_destinations', (t) => {
    t.text('id').primary();
    t.text('name').notNullable().unique();
    t.text('url').notNullable();
    t.text('token');
    t.text('created_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('export_jobs', (t) => {
    t.text('id').primary();
    t.text('destination_id').references('id').inTable('export_destinations').onDelete('SET NULL');
    t.text('destination_name').notNullable();
    // Whose job it is: the instances are read with this identity's visibility at every batch.
    t.text('sub').notNullable();
    t.specificType('roles', 'text[]').notNullable();
    t.specificType('clearances', 'text[]').notNullable();
    t.text('break_glass');
    // Where the request that started the job came from (its audit row says so too).
    t.text('client');
    // The de-identification profile (a role of DEID_VIEWS), when the instances are sent de-identified.
    t.text('profile');
    t.text('state').notNullable().defaultTo('queued');
    t.integer('total').notNullable();
    t.text('error');
    t.text('lease_owner');
    t.timestamp('lease_until', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('finished_at', { useTz: true });
  });
  await knex.raw(`alter table export_jobs add constraint export_jobs_state check (state in ('queued', 'running', 'completed', 'cancelled'))`);
  await knex.raw(`create index export_jobs_open on export_jobs (created_at) where state in ('queued', 'running')`);
  await knex.raw('create index export_jobs_by_sub on export_jobs (sub, created_at)');
  await knex.schema.createTable('export_items', (t) => {
    t.text('job_id').notNullable().references('id').inTable('export_jobs').onDelete('CASCADE');
    t.integer('seq').notNullable();
    t.text('study_uid').notNullable();
    t.text('series_uid').notNullable();
    t.text('sop_instance_uid').notNullable();
    // The SOP Instance UID as sent (its pseudonym under a profile that replaces UIDs): what progress shows.
    t.text('sent_uid').notNullable();
    t.text('state').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('reason');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['job_id', 'seq']);
  });
  await knex.raw(`alter table export_items add constraint export_items_state check (state in ('pending', 'done', 'failed', 'withheld'))`);
  await knex.raw(`create index export_items_pending on export_items (job_id, seq) where state = 'pending'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('export_items');
  await knex.schema.dropTable('export_jobs');
  await knex.schema.dropTable('export_destinations');
}
