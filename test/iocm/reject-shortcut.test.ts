import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';

// POST …/reject/{code}^{scheme}: Cairn writes a rejection note (IHE IOCM)
// listing what the caller sees under the target and stores it through the
// store path, so it rejects exactly as a note sent by STOW-RS would.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

const JSON_ACCEPT = 'application/dicom+json';
type Row = Record<string, { Value?: unknown[] }>;
const sops = (rows: Row[]) => rows.map((r) => r['00080018']?.Value?.[0]).sort();

async function stow(parts: Buffer[]) {
  const { body, contentType } = multipartBody(parts);
  return a.request.post('/dicom-web/studies').set('Content-Type', contentType).set('Accept', JSON_ACCEPT).send(body);
}

/** A study with series A (two instances) and B (one). */
async function study() {
  const studyUid = uid();
  const A = uid();
  const B = uid();
  const a1 = syntheticInstance({ studyUid, seriesUid: A, InstanceNumber: '1', PatientID: 'IOCM-7' });
  const a2 = syntheticInstance({ studyUid, seriesUid: A, InstanceNumber: '2', PatientID: 'IOCM-7' });
  const b1 = syntheticInstance({ studyUid, seriesUid: B, InstanceNumber: '1', PatientID: 'IOCM-7' });
  expect((await stow([a1.bytes, a2.bytes, b1.bytes])).status).toBe(200);
  return { studyUid, A, B, a1, a2, b1 };
}

const instances = async (studyUid: string) => (await a.request.get(`/dicom-web/studies/${studyUid}/instances`).set('Accept', JSON_ACCEPT)).body as Row[];

describe('the reject shortcut', () => {
  it('rejects every instance of a study with a note it stores in that study', async () => {
    const s = await study();
    const res = await a.request.post(`/dicom-web/studies/${s.studyUid}/reject/113001^DCM`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ code: { value: '113001', scheme: 'DCM', meaning: 'Rejected for Quality Reasons' }, rejected: 3 });
    const note = res.body.rejectionNote;
    expect(note.studyUid).toBe(s.studyUid);
    // Only the note is left to see; it is a Key Object Selection Document with the rejection title.
    const left = await instances(s.studyUid);
    expect(sops(left)).toEqual([note.sopInstanceUid]);
    const meta = await a.request
      .get(`/dicom-web/studies/${s.studyUid}/series/${note.seriesUid}/instances/${note.sopInstanceUid}/metadata`)
      .set('Accept', JSON_ACCEPT);
    expect(meta.status).toBe(200);
    const kos = meta.body[0];
    expect(kos['00080016'].Value).toEqual(['1.2.840.10008.5.1.4.1.1.88.59']);
    expect(kos['00100020'].Value).toEqual(['IOCM-7']);
    const title = kos['0040A043'].Value[0];
    expect([title['00080100'].Value, title['00080102'].Value]).toEqual([['113001'], ['DCM']]);
    const evidence = kos['0040A375'].Value[0];
    expect(evidence['0020000D'].Value).toEqual([s.studyUid]);
    const referenced = evidence['00081115'].Value.flatMap((se: Row & { '00081199': { Value: Row[] } }) =>
      se['00081199'].Value.map((i) => i['00081155'].Value?.[0]),
    );
    expect(referenced.sort()).toEqual([s.a1, s.a2, s.b1].map((i) => i.sopInstanceUid).sort());
  });

  it('rejects only the series, or the instance, it names', async () => {
    const s = await study();
    expect((await a.request.post(`/dicom-web/studies/${s.studyUid}/series/${s.B}/reject/113037^DCM`)).body.rejected).toBe(1);
    expect((await a.request.post(`/dicom-web/studies/${s.studyUid}/series/${s.A}/instances/${s.a2.sopInstanceUid}/reject/113039^DCM`)).body.rejected).toBe(1);
    const left = sops(await instances(s.studyUid));
    expect(left).toContain(s.a1.sopInstanceUid);
    expect(left).not.toContain(s.a2.sopInstanceUid);
    expect(left).not.toContain(s.b1.sopInstanceUid);
  });

  it('goes the way of a stored note: change rows, the audit row, and a later store of a rejected UID refused', async () => {
    const s = await study();
    const res = await a.request.post(`/dicom-web/studies/${s.studyUid}/series/${s.A}/reject/113038^DCM`);
    expect(res.status).toBe(200);
    const changes = await a.deps.db('changes').where({ study_uid: s.studyUid, kind: 'rejected' }).select('sop_instance_uid');
    expect(changes.map((c) => c.sop_instance_uid).sort()).toEqual([s.a1.sopInstanceUid, s.a2.sopInstanceUid].sort());
    const row = await a.deps.db('audit_events').where('action', 'store').whereRaw('? = any(instance_uids)', [res.body.rejectionNote.sopInstanceUid]).first();
    expect(row.path).toBe(`/dicom-web/studies/${s.studyUid}/series/${s.A}/reject/113038%5EDCM`.replace('%5E', '^'));
    expect(row.instance_uids).toEqual(expect.arrayContaining([s.a1.sopInstanceUid, s.a2.sopInstanceUid]));
    expect(row.detail.rejections).toEqual([{ kos: res.body.rejectionNote.sopInstanceUid, code: '113038', rejected: 2 }]);
    const again = await stow([s.a1.bytes]);
    expect(again.status).toBe(409);
    const failed = again.body['00081198'].Value[0];
    expect(failed['00081197'].Value).toEqual([0xa771]);
  });

  it('refuses a code that is not a rejection title of CID 7010 with 400 saying which are', async () => {
    const s = await study();
    for (const code of ['113000^DCM', '113001^SRT', '113001', 'quality', '113001^DCM^x']) {
      const res = await a.request.post(`/dicom-web/studies/${s.studyUid}/reject/${encodeURIComponent(code)}`);
      expect(res.status, code).toBe(400);
      expect(res.body.error, code).toBe('InvalidRejectionCode');
      expect(res.body.message, code).toMatch(/113001\^DCM/);
    }
    expect(await instances(s.studyUid)).toHaveLength(3);
  });

  it('answers 404 for a study that does not exist and for one the caller may not see, and rejects nothing there', async () => {
    expect((await a.request.post(`/dicom-web/studies/${uid()}/reject/113001^DCM`)).status).toBe(404);
    const s = await study();
    expect((await a.request.put(`/api/studies/${s.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
    const res = await a.as({ sub: 'modality', roles: ['uploader'] }).post(`/dicom-web/studies/${s.studyUid}/reject/113001^DCM`);
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('StudyNotFound');
    expect(await a.deps.db('instances').where({ study_uid: s.studyUid, rejected: true })).toHaveLength(0);
  });

  it('needs the store action', async () => {
    const s = await study();
    expect((await a.as({ sub: 'dr', roles: ['clinician'] }).post(`/dicom-web/studies/${s.studyUid}/reject/113001^DCM`)).status).toBe(403);
    expect((await a.anonymous.post(`/dicom-web/studies/${s.studyUid}/reject/113001^DCM`)).status).toBe(401);
  });
});
