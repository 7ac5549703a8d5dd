import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';
import { keyObject, type Ref } from './kos.js';

// IHE IOCM rejection over HTTP: a rejection note stored by STOW-RS hides the
// instances it references from every QIDO level and count and from every
// WADO-RS retrieval, for every caller, while the note itself stays findable;
// a rejected SOP Instance UID is not accepted again.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

const JSON_ACCEPT = 'application/dicom+json';
const value = (row: Record<string, { Value?: unknown[] }>, tag: string) => row[tag]?.Value;

async function stow(parts: Buffer[], who = a.request) {
  const { body, contentType } = multipartBody(parts);
  return who.post('/dicom-web/studies').set('Content-Type', contentType).set('Accept', JSON_ACCEPT).send(body);
}

/** A study with series A (two instances) and B (one), all stored. */
async function study() {
  const studyUid = uid();
  const A = uid();
  const B = uid();
  const make = (seriesUid: string, n: number, modality: string) =>
    syntheticInstance({ studyUid, seriesUid, Modality: modality, InstanceNumber: String(n), SeriesNumber: seriesUid === A ? '1' : '2' });
  const a1 = make(A, 1, 'CT');
  const a2 = make(A, 2, 'CT');
  const b1 = make(B, 1, 'MR');
  expect((await stow([a1.bytes, a2.bytes, b1.bytes])).status).toBe(200);
  const ref = (i: { studyUid: string; seriesUid: string; sopInstanceUid: string }): Ref => ({
    studyUid: i.studyUid,
    seriesUid: i.seriesUid,
    sopInstanceUid: i.sopInstanceUid,
  });
  return { studyUid, A, B, a1: ref(a1), a2: ref(a2), b1: ref(b1), bytes: { a1: a1.bytes } };
}

describe('a stored rejection note', () => {
  let s: Awaited<ReturnType<typeof study>>;
  let kos: ReturnType<typeof keyObject>;
  const clinician = () => a.as({ sub: 'dr-reject', roles: ['clinician'] });

  beforeAll(async () => {
    s = await study();
    kos = keyObject(s.studyUid, [s.a1, s.b1]);
    const res = await stow([kos.bytes]);
    expect(res.status).toBe(200);
  });

  it('hides the rejected instances from QIDO at study level, counts included', async () => {
    const res = await clinician().get(`/dicom-web/studies?StudyInstanceUID=${s.studyUid}`).set('Accept', JSON_ACCEPT);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(1);
    // Series A (a2 left) and the note's series; B has no live instance.
    expect(value(res.body[0], '00201206')).toEqual([2]);
    expect(value(res.body[0], '00201208')).toEqual([2]);
    expect(value(res.body[0], '00080061')).toEqual(['CT', 'KO']);
  });

  it('hides them from QIDO at series level, and a series with no live instance with them', async () => {
    const res = await clinician().get(`/dicom-web/studies/${s.studyUid}/series`).set('Accept', JSON_ACCEPT);
    expect(res.status).toBe(200);
    const series = res.body.map((r: Record<string, { Value?: unknown[] }>) => value(r, '0020000E')?.[0]);
    expect(series.sort()).toEqual([s.A, kos.seriesUid].sort());
    const a = res.body.find((r: Record<string, { Value?: unknown[] }>) => value(r, '0020000E')?.[0] === s.A);
    expect(value(a, '00201209')).toEqual([1]);
    expect((await clinician().get(`/dicom-web/series?SeriesInstanceUID=${s.B}`).set('Accept', JSON_ACCEPT)).body).toEqual([]);
  });

  it('hides them from QIDO at instance level, every path of it', async () => {
    for (const url of [`/dicom-web/instances?StudyInstanceUID=${s.studyUid}`, `/dicom-web/studies/${s.studyUid}/instances`]) {
      const res = await clinician().get(url).set('Accept', JSON_ACCEPT);
      expect(res.status).toBe(200);
      const sops = res.body.map((r: Record<string, { Value?: unknown[] }>) => value(r, '00080018')?.[0]);
      expect(sops.sort(), url).toEqual([s.a2.sopInstanceUid, kos.sopInstanceUid].sort());
    }
    const b = await clinician().get(`/dicom-web/studies/${s.studyUid}/series/${s.B}/instances`).set('Accept', JSON_ACCEPT);
    expect(b.body).toEqual([]);
  });

  it('answers 404 for every WADO-RS retrieval of a rejected instance, and leaves it out of the study', async () => {
    const inst = `/dicom-web/studies/${s.studyUid}/series/${s.A}/instances/${s.a1.sopInstanceUid}`;
    expect((await clinician().get(inst).set('Accept', 'multipart/related; type="application/dicom"')).status).toBe(404);
    expect((await clinician().get(`${inst}/metadata`).set('Accept', JSON_ACCEPT)).status).toBe(404);
    expect((await clinician().get(`${inst}/frames/1`).set('Accept', 'multipart/related; type="application/octet-stream"')).status).toBe(404);
    expect((await clinician().get(`/dicom-web/studies/${s.studyUid}/series/${s.B}/metadata`).set('Accept', JSON_ACCEPT)).status).toBe(404);
    const meta = await clinician().get(`/dicom-web/studies/${s.studyUid}/metadata`).set('Accept', JSON_ACCEPT);
    expect(meta.status).toBe(200);
    const sops = meta.body.map((r: Record<string, { Value?: unknown[] }>) => value(r, '00080018')?.[0]);
    expect(sops.sort()).toEqual([s.a2.sopInstanceUid, kos.sopInstanceUid].sort());
  });

  it('keeps them hidden from a caller who breaks the glass', async () => {
    const res = await clinician()
      .get(`/dicom-web/studies/${s.studyUid}/instances`)
      .set('Accept', JSON_ACCEPT)
      .set('X-Break-Glass', 'unconscious patient in the emergency room');
    expect(res.body.map((r: Record<string, { Value?: unknown[] }>) => value(r, '00080018')?.[0])).not.toContain(s.a1.sopInstanceUid);
  });

  it('keeps the note itself findable and retrievable', async () => {
    const res = await clinician().get(`/dicom-web/instances?SOPInstanceUID=${kos.sopInstanceUid}`).set('Accept', JSON_ACCEPT);
    expect(res.status).toBe(200);
    expect(value(res.body[0], '00080016')).toEqual(['1.2.840.10008.5.1.4.1.1.88.59']);
    const meta = await clinician()
      .get(`/dicom-web/studies/${s.studyUid}/series/${kos.seriesUid}/instances/${kos.sopInstanceUid}/metadata`)
      .set('Accept', JSON_ACCEPT);
    expect(meta.status).toBe(200);
  });

  it('refuses a later store of a rejected SOP Instance UID with 0xA771', async () => {
    const res = await stow([s.bytes.a1]);
    expect(res.status).toBe(409);
    const failed = value(res.body, '00081198') as Record<string, { Value?: unknown[] }>[];
    expect(value(failed[0], '00081155')).toEqual([s.a1.sopInstanceUid]);
    expect(value(failed[0], '00081197')).toEqual([0xa771]);
  });

  it('appends a change row of kind rejected per rejected instance', async () => {
    const rows = await a.deps.db('changes').where({ kind: 'rejected', study_uid: s.studyUid }).orderBy('seq').select('sop_instance_uid');
    expect(rows.map((r) => r.sop_instance_uid).sort()).toEqual([s.a1.sopInstanceUid, s.b1.sopInstanceUid].sort());
  });

  it('names the note and the rejected instances in the audit row of the store', async () => {
    const row = await a.deps.db('audit_events').where('action', 'store').whereRaw('? = any(instance_uids)', [kos.sopInstanceUid]).first();
    expect(row.instance_uids).toEqual(expect.arrayContaining([kos.sopInstanceUid, s.a1.sopInstanceUid, s.b1.sopInstanceUid]));
    expect(row.detail.rejections).toEqual([{ kos: kos.sopInstanceUid, code: '113001', rejected: 2 }]);
  });

  it('shows rejected instances to an admin who asks with X-Include-Rejected, and to no one else', async () => {
    const url = `/dicom-web/studies/${s.studyUid}/instances`;
    const admin = await a.request.get(url).set('Accept', JSON_ACCEPT).set('X-Include-Rejected', 'true');
    expect(admin.status).toBe(200);
    expect(admin.body).toHaveLength(4);
    const inst = `/dicom-web/studies/${s.studyUid}/series/${s.A}/instances/${s.a1.sopInstanceUid}/metadata`;
    expect((await a.request.get(inst).set('Accept', JSON_ACCEPT).set('X-Include-Rejected', 'true')).status).toBe(200);
    expect((await a.request.get(inst).set('Accept', JSON_ACCEPT)).status).toBe(404);
    const refused = await clinician().get(url).set('Accept', JSON_ACCEPT).set('X-Include-Rejected', 'true');
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/rejected/);
    const bad = await a.request.get(url).set('Accept', JSON_ACCEPT).set('X-Include-Rejected', 'yes');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/X-Include-Rejected/);
  });

  it('lets an admin delete rejected instances for good when asking for them', async () => {
    const url = `/dicom-web/studies/${s.studyUid}/series/${s.B}`;
    expect((await a.request.delete(url)).status).toBe(404);
    expect((await a.request.delete(url).set('X-Include-Rejected', 'true')).status).toBeLessThan(300);
    expect(await a.deps.db('instances').where({ sop_instance_uid: s.b1.sopInstanceUid }).first()).toBeUndefined();
    // Still refused when sent again: the rejection outlives the data.
    expect(await a.deps.db('rejections').where({ sop_instance_uid: s.b1.sopInstanceUid }).first()).toBeDefined();
  });
});

describe('rejection notes, other cases', () => {
  it('refuses an instance a note rejected before it arrived', async () => {
    const later = syntheticInstance();
    const kos = keyObject(later.studyUid, [{ studyUid: later.studyUid, seriesUid: later.seriesUid, sopInstanceUid: later.sopInstanceUid }], '113039');
    expect((await stow([kos.bytes])).status).toBe(200);
    const res = await stow([later.bytes]);
    expect(res.status).toBe(409);
    expect(value((value(res.body, '00081198') as Record<string, { Value?: unknown[] }>[])[0], '00081197')).toEqual([0xa771]);
  });

  it('rejects nothing with a key object of another title', async () => {
    const s = await study();
    const kos = keyObject(s.studyUid, [s.a1], '113000');
    expect((await stow([kos.bytes])).status).toBe(200);
    const res = await a.request.get(`/dicom-web/studies/${s.studyUid}/instances`).set('Accept', JSON_ACCEPT);
    expect(res.body).toHaveLength(4);
    expect(await a.deps.db('rejections').where({ sop_instance_uid: s.a1.sopInstanceUid }).first()).toBeUndefined();
  });

  it('hides a study all of whose instances a note in another study rejected', async () => {
    const s = await study();
    const kos = keyObject(uid(), [s.a1, s.a2, s.b1], '113037');
    expect((await stow([kos.bytes])).status).toBe(200);
    const res = await a.request.get(`/dicom-web/studies?StudyInstanceUID=${s.studyUid}`).set('Accept', JSON_ACCEPT);
    expect(res.body).toEqual([]);
    expect((await a.request.get(`/dicom-web/studies/${s.studyUid}/metadata`).set('Accept', JSON_ACCEPT)).status).toBe(404);
  });

  it('does not reject what the storing caller may not see', async () => {
    const s = await study();
    expect((await a.request.put(`/api/studies/${s.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
    const kos = keyObject(uid(), [s.a1], '113001');
    expect((await stow([kos.bytes], a.as({ sub: 'modality', roles: ['uploader'] }))).status).toBe(200);
    const seen = await a
      .as({ sub: 'cleared', roles: ['clinician'], clearances: ['vip'] })
      .get(`/dicom-web/studies/${s.studyUid}/instances`)
      .set('Accept', JSON_ACCEPT);
    expect(seen.body).toHaveLength(3);
  });

  it('rejects only an instance stored under the study and series the note names', async () => {
    const s = await study();
    const kos = keyObject(s.studyUid, [{ ...s.a1, seriesUid: s.B }], '113001');
    expect((await stow([kos.bytes])).status).toBe(200);
    const res = await a.request.get(`/dicom-web/studies/${s.studyUid}/instances`).set('Accept', JSON_ACCEPT);
    expect(res.body.map((r: Record<string, { Value?: unknown[] }>) => value(r, '00080018')?.[0])).toContain(s.a1.sopInstanceUid);
  });
});
