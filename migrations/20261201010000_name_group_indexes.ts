import type { Knex } from 'knex';

// QIDO PatientName matching looks at every component group (Alphabetic,
// Ideographic, Phonetic): these partial indexes let the Ideographic and
// Phonetic branches of that match use an index as the Alphabetic one does.
// The default /studies order (newest first) gets an index too.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    "create index studies_patient_name_ideographic on studies (upper(split_part(patient_name, '=', 2)) text_pattern_ops) where patient_name like '%=%'",
  );
  await knex.raw(
    "create index studies_patient_name_phonetic on studies (upper(split_part(patient_name, '=', 3)) text_pattern_ops) where patient_name like '%=%'",
  );
  await knex.raw('create index studies_date_order on studies (study_date desc nulls last, study_uid)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index studies_patient_name_ideographic');
  await knex.raw('drop index studies_patient_name_phonetic');
  await knex.raw('drop index studies_date_order');
}
