import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLabelRules } from '../../server/labels.js';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';

// Sensitivity labels: from rules in configuration at ingest, and from the
// admin label API.

const RULES = parseLabelRules(
  JSON.stringify([
    { label: 'photo', level: 'series', when: { Modality: ['XC', 'GM'] } },
    { label: 'forensic', level: 'series', when: { Modality: ['XC'], BodyPartExamined: ['GENITAL', 'BREAST'] } },
    { label: 'vip', when: { PatientID: ['VIP-001'] } },
    { label: 'confidential', when: { '00403001': 'present' } },
  ]),
);

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive({ labelRules: RULES });
});
afterAll(async () => {
  await a?.close();
});

async function store(...instances: Buffer[]) {
  const { body, contentType } = multipartBody(instances);
  const res = await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
  expect(res.status).toBe(200);
}

const labelsOf = async (studyUid: string, seriesUid?: string) =>
  (await a.request.get(`/api/studies/${studyUid}${seriesUid ? `/series/${seriesUid}` : ''}/labels`)).body.labels;

describe('label rules at ingest', () => {
  it('label a series by Modality, and by Modality and BodyPartExamined together', async () => {
    const photo = syntheticInstance({ Modality: 'XC' });
    const both = syntheticInstance({ studyUid: photo.studyUid, Modality: 'XC', BodyPartExamined: 'BREAST' });
    const ct = syntheticInstance({ studyUid: photo.studyUid, Modality: 'CT', BodyPartExamined: 'BREAST' });
    await store(photo.bytes, both.bytes, ct.bytes);
    expect(await labelsOf(photo.studyUid)).toEqual([]);
    expect(await labelsOf(photo.studyUid, photo.seriesUid)).toEqual(['photo']);
    expect(await labelsOf(photo.studyUid, both.seriesUid)).toEqual(['forensic', 'photo']);
    expect(await labelsOf(photo.studyUid, ct.seriesUid)).toEqual([]);
  });

  it('label a study by PatientID on a VIP list', async () => {
    const vip = syntheticInstance({ PatientID: 'VIP-001' });
    await store(vip.bytes);
    expect(await labelsOf(vip.studyUid)).toEqual(['vip']);
    expect((await a.as({ roles: ['clinician'] }).get(`/dicom-web/studies/${vip.studyUid}/metadata`)).status).toBe(404);
    expect((await a.as({ roles: ['clinician'], clearances: ['vip'] }).get(`/dicom-web/studies/${vip.studyUid}/metadata`)).status).toBe(200);
  });

  it('label a study when an attribute is present (Confidentiality Constraint on Patient Data Description)', async () => {
    const c = syntheticInstance({ ConfidentialityConstraintOnPatientDataDescription: 'do not disclose' });
    const plain = syntheticInstance();
    await store(c.bytes, plain.bytes);
    expect(await labelsOf(c.studyUid)).toEqual(['confidential']);
    expect(await labelsOf(plain.studyUid)).toEqual([]);
  });

  it('a later instance adds its labels to a study already stored, and the study is hidden from then on', async () => {
    const first = syntheticInstance({ PatientID: 'P-1' });
    await store(first.bytes);
    expect((await a.as({ roles: ['clinician'] }).get(`/dicom-web/studies?StudyInstanceUID=${first.studyUid}`)).body).toHaveLength(1);
    await store(syntheticInstance({ studyUid: first.studyUid, PatientID: 'VIP-001' }).bytes);
    expect(await labelsOf(first.studyUid)).toEqual(['vip']);
    expect((await a.as({ roles: ['clinician'] }).get(`/dicom-web/studies?StudyInstanceUID=${first.studyUid}`)).body).toEqual([]);
  });

  it('rules that name an unknown attribute or a bad label are refused at boot', () => {
    expect(() => parseLabelRules('[{"label":"x","when":{"NoSuchKeyword":["1"]}}]')).toThrow(/NoSuchKeyword/);
    expect(() => parseLabelRules('[{"label":"bad label","when":{"Modality":["XC"]}}]')).toThrow(/label/);
    expect(() => parseLabelRules('[{"label":"x","when":{}}]')).toThrow(/condition/);
    expect(() => parseLabelRules('not json')).toThrow(/JSON/);
  });
});

describe('the label API', () => {
  let inst: ReturnType<typeof syntheticInstance>;
  beforeAll(async () => {
    inst = syntheticInstance({ Modality: 'CT' });
    await store(inst.bytes);
  });

  it("PUT replaces a study's labels (sorted, distinct), GET reads them, DELETE clears them", async () => {
    const put = await a.request.put(`/api/studies/${inst.studyUid}/labels`).send({ labels: ['vip', 'abuse', 'vip'] });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ studyUid: inst.studyUid, labels: ['abuse', 'vip'] });
    expect(await labelsOf(inst.studyUid)).toEqual(['abuse', 'vip']);
    const del = await a.request.delete(`/api/studies/${inst.studyUid}/labels`);
    expect(del.status).toBe(200);
    expect(del.body.labels).toEqual([]);
  });

  it('labels a series, and the change is audited with the labels before and after', async () => {
    await a.request.put(`/api/studies/${inst.studyUid}/series/${inst.seriesUid}/labels`).send({ labels: ['gruesome'] });
    const row = await a.deps
      .db('audit_events')
      .where({ action: 'label-change' })
      .whereRaw('? = any(series_uids)', [inst.seriesUid])
      .orderBy('id', 'desc')
      .first();
    expect(row.detail).toMatchObject({ before: [], after: ['gruesome'] });
    expect(row.study_uids).toEqual([inst.studyUid]);
    expect((await a.as({ roles: ['clinician'] }).get(`/dicom-web/studies/${inst.studyUid}/series`)).body).toEqual([]);
  });

  it('an admin can label a study they cannot see, and take the label off again', async () => {
    await a.request.put(`/api/studies/${inst.studyUid}/labels`).send({ labels: ['vip'] });
    expect((await a.request.get(`/dicom-web/studies/${inst.studyUid}/metadata`)).status).toBe(404);
    expect((await a.request.delete(`/api/studies/${inst.studyUid}/labels`)).status).toBe(200);
    await a.request.delete(`/api/studies/${inst.studyUid}/series/${inst.seriesUid}/labels`);
    expect((await a.request.get(`/dicom-web/studies/${inst.studyUid}/metadata`)).status).toBe(200);
  });

  it('refuses labels that are not label names, and bodies of the wrong shape', async () => {
    for (const body of [{ labels: ['no spaces'] }, { labels: [''] }, { labels: 'vip' }, { tags: [] }, { labels: [1] }]) {
      const res = await a.request.put(`/api/studies/${inst.studyUid}/labels`).send(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe('InvalidLabels');
    }
    const notJson = await a.request.put(`/api/studies/${inst.studyUid}/labels`).set('Content-Type', 'application/json').send('{nope');
    expect(notJson.status).toBe(400);
  });

  it('is 404 for a study or series that does not exist', async () => {
    expect((await a.request.get(`/api/studies/${uid()}/labels`)).status).toBe(404);
    expect((await a.request.put(`/api/studies/${inst.studyUid}/series/${uid()}/labels`).send({ labels: ['x'] })).status).toBe(404);
  });

  it('is for admins only', async () => {
    for (const role of ['clinician', 'researcher', 'uploader', 'auditor'] as const) {
      expect((await a.as({ roles: [role] }).get(`/api/studies/${inst.studyUid}/labels`)).status, role).toBe(403);
      expect(
        (
          await a
            .as({ roles: [role] })
            .put(`/api/studies/${inst.studyUid}/labels`)
            .send({ labels: [] })
        ).status,
        role,
      ).toBe(403);
    }
  });
});
