// The bench's fast index fill: index rows generated inside Cairn's PostgreSQL,
// cloned from studies the bench stored through STOW-RS (real rows, real
// blobs), so that every generated row has the columns, JSON and shape the
// index statement gave its template, with its own UIDs, patient, accession
// and dates. A million instances take minutes this way, against about an
// hour of STOW of small instances.
//
// The generated instances point at blobs that do not exist (a blob key of the
// real shape, never written): QIDO and /metadata answer from the index alone
// and never open a blob, which is what the figures at each index size measure.
// A WADO-RS retrieve of a generated instance would fail; the bench never asks
// for one. The studies the bench stored itself stay real.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { FIRST, LAST, RUN_TAG } from './data.js';

/** The tables a store writes rows into, in the order they are filled. */
const TABLES = ['studies', 'series', 'instances'] as const;
type Table = (typeof TABLES)[number];

/** Instances per generated statement (one transaction each). */
export const SQL_FILL_BATCH_INSTANCES = 20_000;

/** One real study to clone, and how many of every `every` generated studies are its copies. */
export interface Template {
  studyUid: string;
  /** Generated study k is a copy of this template when k % every === slot (the first template matching wins; give the rarest first). */
  every: number;
  slot: number;
}

export interface SqlFillResult {
  studies: number;
  instances: number;
  /** The PatientIDs of the generated studies (one study per patient). */
  patients: string[];
  /** Their distinct surnames (the Alphabetic group's first component). */
  surnames: string[];
  insertSeconds: number;
  /** VACUUM (ANALYZE) of the index tables, then CHECKPOINT: the state of an archive in service, whose autovacuum has caught up. */
  settleSeconds: number;
}

/** The values a generated study k gets (the same in SQL below; exported for tests). */
export function generatedPatientId(k: number): string {
  return `BENCH${RUN_TAG}-G${String(k).padStart(7, '0')}`;
}
export function generatedSurname(k: number): string {
  return `${LAST[k % LAST.length]}${RUN_TAG}`;
}

/**
 * Fills the index by `instances` or a little more (whole studies), cloning
 * the templates. Generated studies are numbered from `firstStudy` on, so
 * consecutive fills never repeat a UID or a patient; returns where the next
 * fill starts in `nextStudy`.
 */
export async function sqlFill(
  dbUrl: string,
  templates: readonly Template[],
  instances: number,
  firstStudy: number,
  log: (m: string) => void = () => {},
): Promise<SqlFillResult & { nextStudy: number }> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    // Bench rows only: a crash mid-fill loses at most the last batches, which the next run makes again.
    await client.query('set synchronous_commit = off');
    const cols = await columns(client);
    const tmpl = await Promise.all(templates.map((t) => loadTemplate(client, t)));
    const base = uidRoot(tmpl.flatMap((t) => t.tokens));
    const statements = tmpl.map((t) => fillStatement(cols, t));
    const pickTemplate = (k: number): number => templates.findIndex((t) => k % t.every === t.slot);
    const patients: string[] = [];
    const surnames = new Set<string>();
    let done = 0;
    let k = firstStudy;
    const t0 = performance.now();
    // Runs of consecutive studies of one template, up to a batch of instances each.
    while (done < instances) {
      const ti = pickTemplate(k);
      if (ti < 0) throw new Error(`no template for generated study ${k}`);
      const from = k;
      let n = 0;
      while (done + n < instances && n < SQL_FILL_BATCH_INSTANCES && pickTemplate(k) === ti) {
        patients.push(generatedPatientId(k));
        surnames.add(generatedSurname(k));
        n += tmpl[ti].instances;
        k++;
      }
      const r = await client.query<{ n: number }>(statements[ti], [from, k - 1, base, RUN_TAG, LAST, FIRST]);
      if (r.rows[0].n !== n) throw new Error(`generated ${r.rows[0].n} instances for studies ${from}..${k - 1}, expected ${n}`);
      done += n;
      if (Math.floor(done / 100_000) !== Math.floor((done - n) / 100_000)) log(`sql fill: ${done} instances`);
    }
    const insertSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await client.query(`vacuum (analyze) ${[...TABLES, 'changes'].join(', ')}`);
    await client.query('checkpoint').catch(() => {
      /* CHECKPOINT needs a superuser or pg_checkpoint; without it the server's own checkpoints follow */
    });
    return {
      studies: k - firstStudy,
      instances: done,
      patients,
      surnames: [...surnames],
      insertSeconds,
      settleSeconds: (performance.now() - t1) / 1000,
      nextStudy: k,
    };
  } finally {
    await client.end();
  }
}

interface Column {
  name: string;
  type: string;
  hasDefault: boolean;
}

async function columns(client: pg.Client): Promise<Record<Table, Column[]>> {
  const r = await client.query<{ table_name: Table; column_name: string; data_type: string; column_default: string | null }>(
    `select table_name, column_name, data_type, column_default from information_schema.columns
      where table_schema = current_schema() and table_name = any($1) order by ordinal_position`,
    [TABLES],
  );
  const out = { studies: [], series: [], instances: [] } as Record<Table, Column[]>;
  for (const c of r.rows) out[c.table_name].push({ name: c.column_name, type: c.data_type, hasDefault: c.column_default !== null });
  return out;
}

interface LoadedTemplate {
  studyUid: string;
  instances: number;
  /** The template's own values that every generated copy replaces: UIDs are replaced per row, these per study. */
  patientId: string;
  patientName: string;
  accession: string;
  birthDate: string;
  studyDate: string;
  /** Every string the UID root must not contain (it would be replaced too). */
  tokens: string[];
}

async function loadTemplate(client: pg.Client, t: Template): Promise<LoadedTemplate> {
  const s = await client.query(
    `select patient_id, patient_name, accession_number, patient_birth_date, study_date,
      (select count(*)::int from instances where study_uid = $1) as instances from studies where study_uid = $1`,
    [t.studyUid],
  );
  if (!s.rows.length) throw new Error(`template study ${t.studyUid} is not in the index`);
  const r = s.rows[0] as Record<string, string | number | null>;
  // Each template series and instance gets a short number, the tail of its generated UIDs.
  await client.query(`create temp table if not exists fill_series (series_uid text primary key, j int not null)`);
  await client.query(`create temp table if not exists fill_instances (sop_instance_uid text primary key, j int not null, m int not null)`);
  await client.query(
    `insert into fill_series select series_uid, row_number() over (order by series_number nulls last, series_uid)
      from series where study_uid = $1 on conflict do nothing`,
    [t.studyUid],
  );
  await client.query(
    `insert into fill_instances select i.sop_instance_uid, s.j, row_number() over (partition by i.series_uid order by i.instance_number nulls last, i.sop_instance_uid)
      from instances i join fill_series s using (series_uid) where i.study_uid = $1 on conflict do nothing`,
    [t.studyUid],
  );
  const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
  const out = {
    studyUid: t.studyUid,
    instances: Number(r.instances),
    patientId: str(r.patient_id),
    patientName: str(r.patient_name),
    accession: str(r.accession_number),
    birthDate: str(r.patient_birth_date),
    studyDate: str(r.study_date),
  };
  if (!out.instances) throw new Error(`template study ${t.studyUid} has no instances`);
  if (!out.patientId || !out.patientName || !out.studyDate) throw new Error(`template study ${t.studyUid} lacks a patient or a study date`);
  return { ...out, tokens: [out.accession, out.birthDate, out.studyDate].filter(Boolean) };
}

/** A UID root of our own: 2.25 and a random integer (PS3.5 §B.2), below which the generated UIDs are numbered. */
function uidRoot(avoid: readonly string[]): string {
  for (;;) {
    const root = `2.25.${BigInt(`0x${randomBytes(12).toString('hex')}`).toString(10)}`;
    if (!avoid.some((t) => root.includes(t))) return root;
  }
}

/**
 * The statement that writes generated studies $1..$2 of one template: its
 * study, series and instance rows for each, and a change row per instance as
 * a store writes. Parameters: $3 the UID root, $4 the run tag, $5 surnames,
 * $6 given names. Text and JSON columns are the template's with its UIDs,
 * patient, accession and dates replaced (UIDs first: the other values cannot
 * occur in a generated UID); a column with a default that the index statement
 * does not write (created_at) takes its default; the blob key is a new one of
 * the same shape, and the checksum is that of the new SOP Instance UID (there
 * is no blob to hash).
 */
function fillStatement(cols: Record<Table, Column[]>, t: LoadedTemplate): string {
  const lit = (v: string): string => `'${v.replace(/'/g, "''")}'`;
  // Per-study values, from the generated study number k.
  const g = `select k,
      $3::text || '.1.' || k as study_uid,
      $3::text || '.2.' || k as series_root,
      $3::text || '.3.' || k as sop_root,
      'BENCH' || $4::text || '-G' || lpad(k::text, 7, '0') as patient_id,
      ($5::text[])[1 + k % ${LAST.length}] || $4::text || '^' || ($6::text[])[1 + (k / ${LAST.length}) % ${FIRST.length}] || '^' || chr(65 + k % 26) as patient_name,
      'G' || lpad(upper(to_hex(k)), 10, '0') as accession,
      (1930 + k % 80)::text || '0' || (1 + k % 9)::text || '1' || (k % 10)::text as birth_date,
      to_char(date '2015-01-01' + (k * 7919) % 3650, 'YYYYMMDD') as study_date
    from generate_series($1::int, $2::int) as k`;
  // Three arcs below the root, so that no generated UID is another's: a study's own
  // UIDs below it (Frame of Reference, say) keep clear of its series and instances.
  const newSeries = `g.series_root || '.' || fs.j`;
  const newSop = `g.sop_root || '.' || fi.j || '.' || fi.m`;
  const replaced = (x: string, uids: [string, string][]): string => {
    let e = x;
    for (const [from, to] of uids) e = `replace(${e}, ${from}, ${to})`;
    for (const [from, to] of [
      [t.patientId, 'g.patient_id'],
      [t.patientName, 'g.patient_name'],
      [t.accession, 'g.accession'],
      [t.birthDate, 'g.birth_date'],
      [t.studyDate, 'g.study_date'],
    ] as const)
      if (from) e = `replace(${e}, ${lit(from)}, ${to})`;
    return e;
  };
  const select = (table: Table, uids: [string, string][]): { names: string; values: string } => {
    const keep = cols[table].filter((c) => !(c.hasDefault && c.type.startsWith('timestamp')));
    const values = keep.map((c) => {
      if (table === 'instances' && c.name === 'blob_key') return `regexp_replace(t.blob_key, '[^/]*$', gen_random_uuid()::text || '.dcm')`;
      if (table === 'instances' && c.name === 'sha256') return `encode(sha256(convert_to(${newSop}, 'UTF8')), 'hex')`;
      if (c.type === 'text' || c.type === 'character varying') return replaced(`t.${quote(c.name)}`, uids);
      if (c.type === 'jsonb' || c.type === 'json') return `${replaced(`t.${quote(c.name)}::text`, uids)}::${c.type}`;
      return `t.${quote(c.name)}`;
    });
    return { names: keep.map((c) => quote(c.name)).join(', '), values: values.join(', ') };
  };
  const study: [string, string][] = [[`t.study_uid`, 'g.study_uid']];
  const s = select('studies', study);
  const se = select('series', [...study, ['t.series_uid', newSeries]]);
  const i = select('instances', [...study, ['t.series_uid', newSeries], ['t.sop_instance_uid', newSop]]);
  const uid = lit(t.studyUid);
  return `with g as (${g}),
    st as (insert into studies (${s.names}) select ${s.values} from g cross join studies t where t.study_uid = ${uid}),
    se as (insert into series (${se.names}) select ${se.values} from g cross join series t join fill_series fs using (series_uid) where t.study_uid = ${uid}),
    i as (insert into instances (${i.names}) select ${i.values}
      from g cross join instances t join fill_series fs using (series_uid) join fill_instances fi using (sop_instance_uid) where t.study_uid = ${uid}
      returning study_uid, series_uid, sop_instance_uid),
    c as (insert into changes (kind, study_uid, series_uid, sop_instance_uid) select 'stored', study_uid, series_uid, sop_instance_uid from i)
    select count(*)::int as n from i`;
}

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;
