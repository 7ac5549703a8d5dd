import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batches, newPatient, newStudy, type StudySpec } from '../bench/data.js';
import { generatedPatientId, generatedSurname, sqlFill, type SqlFillResult } from '../bench/fill.js';
import { createTestArchive, multipartBody, type TestArchive } from './helpers.js';

// The bench's SQL fill (bench/fill.ts): index rows cloned inside PostgreSQL
// from a study stored through STOW-RS, each generated study with its own
// UIDs, patient, accession and dates, and otherwise the very rows a store
// writes, so that QIDO and /metadata meet a generated study as a stored one.

let a: TestArchive;
let tmpl: StudySpec;
let fill: SqlFillResult & { nextStudy: number };
const type = 'application/dicom+json';

beforeAll(async () => {
  a = await createTestArchive();
  tmpl = newStudy(newPatient(), [3, 2]);
  const files = [...batches([tmpl], 100, 16)][0].files.map((f) => Buffer.from(f));
  const { body, contentType } = multipartBody(files);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
  // 12 instances asked, whole studies of 5 given: three studies, numbered 40, 41, 42.
  fill = await sqlFill(a.dbUrl, [{ studyUid: tmpl.uid, every: 1, slot: 0 }], 12, 40);
});
afterAll(async () => {
  await a?.close();
});

/** Generated text with the generated study's own values put back to the template's. */
function asTemplate(text: string, gen: { study: string; patientId: string; patientName: string; accession: string; birth: string; date: string }): string {
  return text
    .replaceAll(gen.patientId, tmpl.patient.id)
    .replaceAll(gen.patientName, tmpl.patient.name)
    .replaceAll(gen.accession, tmpl.accession)
    .replaceAll(gen.birth, tmpl.patient.birthDate)
    .replaceAll(gen.date, tmpl.date);
}

describe('the bench SQL fill', () => {
  it('writes whole studies of the template until the count is reached, with a change row per instance', async () => {
    expect(fill).toMatchObject({ studies: 3, instances: 15, nextStudy: 43 });
    expect(fill.patients).toEqual([40, 41, 42].map(generatedPatientId));
    expect(fill.surnames).toEqual([40, 41, 42].map(generatedSurname));
    expect(await a.deps.db('instances').count({ n: '*' }).first()).toEqual({ n: 20 });
    expect(await a.deps.db('series').count({ n: '*' }).first()).toEqual({ n: 8 });
    expect(await a.deps.db('changes').where({ kind: 'stored' }).count({ n: '*' }).first()).toEqual({ n: 20 });
    const keys: { blob_key: string }[] = await a.deps.db('instances').select('blob_key');
    expect(new Set(keys.map((k) => k.blob_key)).size).toBe(20);
    for (const k of keys) expect(k.blob_key).toMatch(/^instances\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/[0-9a-f-]{36}\.dcm$/);
  });

  it('gives a generated patient one study that QIDO finds by PatientID, with the counts of a stored one', async () => {
    const res = await a.request
      .get('/dicom-web/studies')
      .query({ PatientID: generatedPatientId(41) })
      .set('Accept', type);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(1);
    const s = res.body[0];
    expect(s['00100020'].Value).toEqual([generatedPatientId(41)]);
    expect(s['00100010'].Value[0].Alphabetic).toMatch(new RegExp(`^${generatedSurname(41)}\\^`));
    expect(s['0020000D'].Value[0]).not.toBe(tmpl.uid);
    expect(s['0020000D'].Value[0]).toMatch(/^2\.25\.\d+\.1\.41$/);
    expect(s['00201206'].Value).toEqual([2]);
    expect(s['00201208'].Value).toEqual([5]);
    expect(s['00080061'].Value).toEqual(['CT']);
    const byName = await a.request
      .get('/dicom-web/studies')
      .query({ PatientName: `${generatedSurname(41)}*` })
      .set('Accept', type);
    expect(byName.body.map((x: Record<string, { Value: string[] }>) => x['00100020'].Value[0])).toContain(generatedPatientId(41));
  });

  it('writes rows that differ from the template only by UIDs, patient, accession and dates', async () => {
    const db = a.deps.db;
    const st = await db('studies')
      .where({ patient_id: generatedPatientId(42) })
      .first();
    const t = await db('studies').where({ study_uid: tmpl.uid }).first();
    const gen = {
      study: st.study_uid,
      patientId: st.patient_id,
      patientName: st.patient_name,
      accession: st.accession_number,
      birth: st.patient_birth_date,
      date: st.study_date,
    };
    expect(gen.accession).not.toBe(tmpl.accession);
    expect(gen.date).toMatch(/^20(1[5-9]|2[0-4])\d{4}$/);
    expect(asTemplate(st.attributes_text, gen).replaceAll(gen.study, tmpl.uid)).toBe(t.attributes_text);
    expect(st.attributes).toEqual(JSON.parse(st.attributes_text));
    const series = await db('series').where({ study_uid: gen.study }).orderBy('series_number');
    const root = gen.study.replace(/\.1\.42$/, '');
    expect(series.map((s) => s.series_uid)).toEqual([`${root}.2.42.1`, `${root}.2.42.2`]);
    const generated = await db('instances').where({ study_uid: gen.study }).orderBy(['series_uid', 'instance_number']);
    const template = await db('instances').where({ study_uid: tmpl.uid });
    expect(generated).toHaveLength(template.length);
    for (const row of generated) {
      const [, j, m] = /\.(\d+)\.(\d+)$/.exec(row.sop_instance_uid)!;
      const seriesUid = tmpl.series[Number(j) - 1].uid;
      const orig = template.find((x) => x.series_uid === seriesUid && x.instance_number === Number(m));
      expect(orig).toBeDefined();
      const back = asTemplate(row.metadata, gen)
        .replaceAll(row.sop_instance_uid, orig.sop_instance_uid)
        .replaceAll(row.series_uid, seriesUid)
        .replaceAll(gen.study, tmpl.uid);
      expect(back).toBe(orig.metadata);
      expect(row.metadata).toContain(`studies/${gen.study}/series/${row.series_uid}/instances/${row.sop_instance_uid}/bulkdata/7FE00010`);
      expect({ ...row, sop_instance_uid: 0, series_uid: 0, study_uid: 0, metadata: 0, blob_key: 0, sha256: 0, created_at: 0 }).toEqual({
        ...orig,
        sop_instance_uid: 0,
        series_uid: 0,
        study_uid: 0,
        metadata: 0,
        blob_key: 0,
        sha256: 0,
        created_at: 0,
      });
      expect(row.sha256).not.toBe(orig.sha256);
    }
  });

  it('goes on from where the last fill stopped, each study a copy of the template its number picks', async () => {
    const other = newStudy(newPatient(), [4]);
    const { body, contentType } = multipartBody([...batches([other], 100, 16)][0].files.map((f) => Buffer.from(f)));
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
    // Study k copies `other` when k % 3 === 2, else the first template: 43, 44 → 5 + 4 instances.
    const more = await sqlFill(
      a.dbUrl,
      [
        { studyUid: other.uid, every: 3, slot: 2 },
        { studyUid: tmpl.uid, every: 1, slot: 0 },
      ],
      6,
      fill.nextStudy,
    );
    expect(more).toMatchObject({ studies: 2, instances: 9, nextStudy: 45 });
    const counts: { patient_id: string; n: number }[] = await a.deps
      .db('studies as s')
      .join('instances as i', 'i.study_uid', 's.study_uid')
      .whereIn('s.patient_id', [43, 44].map(generatedPatientId))
      .groupBy('s.patient_id')
      .orderBy('s.patient_id')
      .select('s.patient_id', a.deps.db.raw('count(*)::int as n'));
    expect(counts).toEqual([
      { patient_id: generatedPatientId(43), n: 5 },
      { patient_id: generatedPatientId(44), n: 4 },
    ]);
    expect(await a.deps.db('instances').count({ n: '*' }).first()).toEqual({ n: 33 });
  });

  it('serves a generated series metadata from the index, each instance under its own UIDs', async () => {
    const st = await a.deps
      .db('studies')
      .where({ patient_id: generatedPatientId(40) })
      .first();
    const se = st.study_uid.replace(/\.1\.40$/, '.2.40.1');
    const res = await a.request.get(`/dicom-web/studies/${st.study_uid}/series/${se}/metadata`).set('Accept', type);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(3);
    const sops = res.body.map((x: Record<string, { Value: string[] }>) => x['00080018'].Value[0]).sort();
    expect(sops).toEqual([1, 2, 3].map((m) => st.study_uid.replace(/\.1\.40$/, `.3.40.1.${m}`)));
    for (const x of res.body) {
      expect(x['0020000E'].Value).toEqual([se]);
      expect(x['00100020'].Value).toEqual([generatedPatientId(40)]);
      // No generated UID names two things: the study's Frame of Reference is none of its series.
      expect(x['00200052'].Value[0]).toBe(`${st.study_uid}.1`);
      expect(x['00200052'].Value[0]).not.toBe(se);
    }
  });
});
