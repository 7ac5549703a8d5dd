import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { Research } from '../../server/deid/research.js';
import { newCaller } from '../../server/access.js';
import { binaryParser, createTestArchive, multipartBody, parseMultipart, sample, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// A researcher is served de-identified DICOMweb answers (PS3.15 Annex E,
// Basic Profile with modified dates) at every QIDO level, in metadata and in
// instances, speaks in the pseudonymous UIDs it was shown, and never reads an
// original identifier; a clinician reads the archive as stored.

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
/** MR_small_implicit.dcm: stored in Implicit VR Little Endian. */
const MR = {
  study: '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457',
  series: '1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457',
  instance: '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457',
};
/** Values of the CT sample that identify its patient, its visit or its place. */
const IDENTIFYING = ['CompressedSamples', 'JFK IMAGING', '20040119', CT.study, CT.series, CT.instance];

const RESEARCHER: Who = { sub: 'res-1', roles: ['researcher'] };
const CLINICIAN: Who = { sub: 'dr-1', roles: ['clinician'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };

const withheld = syntheticInstance({ Modality: 'OT' });
const labelled = syntheticInstance({ Modality: 'OT', BurnedInAnnotation: 'NO' });

let a: TestArchive;
const get = (who: Who, url: string, accept = 'application/dicom+json') => a.as(who).get(url).set('Accept', accept).buffer(true).parse(binaryParser);
const text = (r: { body: Buffer }) => r.body.toString('latin1');
const json = (r: { body: Buffer }) => JSON.parse(text(r));

/** The research view of this archive, for the pseudonyms a test expects. */
const view = () => a.deps.research!.viewOf(newCaller({ sub: 'x', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' }))!;
const pseudo = (uid: string) => view().deidentifier.uid(uid);

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID });
  const m = multipartBody([sample('CT_small.dcm'), withheld.bytes, labelled.bytes, sample('MR_small_implicit.dcm')]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  expect((await a.request.put(`/api/studies/${labelled.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

describe('QIDO and metadata for a researcher', () => {
  it.each([
    ['studies', '/dicom-web/studies'],
    ['series', '/dicom-web/series'],
    ['instances', '/dicom-web/instances?includefield=all'],
  ])('QIDO %s shows no identifying value to a researcher, and shows them to a clinician', async (_l, url) => {
    const r = await get(RESEARCHER, url);
    expect(r.status).toBe(200);
    for (const v of IDENTIFYING) expect(text(r), v).not.toContain(v);
    const c = await get(CLINICIAN, url);
    expect(text(c)).toContain(CT.study);
    if (url.endsWith('studies')) expect(text(c)).toContain('CompressedSamples');
  });

  it('shows the pseudonymous study UID, a pseudonym for the patient and PatientIdentityRemoved', async () => {
    const [study] = json(await get(RESEARCHER, `/dicom-web/studies?StudyInstanceUID=${pseudo(CT.study)}`));
    expect(study['0020000D'].Value).toEqual([pseudo(CT.study)]);
    expect(study['00100020'].Value[0]).toMatch(/^P[0-9A-F]{16}$/);
    expect(study['00120062'].Value).toEqual(['YES']);
    expect(study['00081190'].Value[0]).toContain(`/studies/${pseudo(CT.study)}`);
  });

  it('metadata by pseudonymous UIDs is de-identified, with BulkDataURIs under pseudonyms', async () => {
    const r = await get(RESEARCHER, `/dicom-web/studies/${pseudo(CT.study)}/series/${pseudo(CT.series)}/metadata`);
    expect(r.status).toBe(200);
    for (const v of IDENTIFYING) expect(text(r), v).not.toContain(v);
    const [m] = json(r);
    expect(m['00080018'].Value).toEqual([pseudo(CT.instance)]);
    expect(m['00280303'].Value).toEqual(['MODIFIED']);
    expect(m['7FE00010'].BulkDataURI).toContain(`/instances/${pseudo(CT.instance)}`);
    expect(text(await get(CLINICIAN, `/dicom-web/studies/${CT.study}/metadata`))).toContain('CompressedSamples');
  });

  it('shifts the study date by the same days in QIDO and in metadata', async () => {
    const [study] = json(await get(RESEARCHER, `/dicom-web/studies?StudyInstanceUID=${pseudo(CT.study)}`));
    const [m] = json(await get(RESEARCHER, `/dicom-web/studies/${pseudo(CT.study)}/metadata`));
    expect(study['00080020'].Value[0]).toMatch(/^\d{8}$/);
    expect(study['00080020'].Value[0]).not.toBe('20040119');
    expect(m['00080020'].Value).toEqual(study['00080020'].Value);
    expect(m['00100020'].Value).toEqual(study['00100020'].Value);
  });

  it('finds nothing by an original identifier, and the study by its pseudonymous UID', async () => {
    expect(json(await get(RESEARCHER, '/dicom-web/studies?PatientID=1CT1'))).toEqual([]);
    expect(json(await get(RESEARCHER, '/dicom-web/studies?PatientName=Compressed*'))).toEqual([]);
    expect(json(await get(RESEARCHER, `/dicom-web/studies?StudyInstanceUID=${CT.study}`))).toEqual([]);
    expect(json(await get(RESEARCHER, `/dicom-web/studies?StudyInstanceUID=${pseudo(CT.study)}`))).toHaveLength(1);
    expect(json(await get(CLINICIAN, '/dicom-web/studies?PatientID=1CT1'))).toHaveLength(1);
  });

  it("finds the patient's studies by the patient pseudonym it was shown, exactly, in Patient ID or Patient Name", async () => {
    const [shown] = json(await get(RESEARCHER, `/dicom-web/studies?StudyInstanceUID=${pseudo(CT.study)}`));
    const patient = shown['00100020'].Value[0] as string;
    expect(patient).toMatch(/^P[0-9A-F]{16}$/);
    for (const q of [`PatientID=${patient}`, `PatientName=${patient}`, `PatientID=${patient}&PatientName=${patient}`]) {
      const found = json(await get(RESEARCHER, `/dicom-web/studies?${q}`));
      expect(
        found.map((s: Record<string, { Value: string[] }>) => s['0020000D'].Value[0]),
        q,
      ).toEqual([pseudo(CT.study)]);
    }
    // From another replica, which never showed it: the pseudonym was written with the answer that showed it.
    const replica = createApp({ ...a.deps, research: new Research(DEID, DEID.key) });
    const other = await supertest(replica.callback())
      .get(`/dicom-web/studies?PatientID=${patient}`)
      .set('Authorization', `Bearer ${a.token(RESEARCHER)}`)
      .set('Accept', 'application/dicom+json');
    expect(other.body.map((s: Record<string, { Value: string[] }>) => s['0020000D'].Value[0])).toEqual([pseudo(CT.study)]);
    // No wildcard on a pseudonym, no pseudonym never shown, no original: nothing.
    for (const q of [
      `PatientID=${patient.slice(0, 8)}*`,
      'PatientID=P0000000000000000',
      'PatientID=1CT1',
      `PatientID=${patient}&PatientName=P0000000000000000`,
    ])
      expect(json(await get(RESEARCHER, `/dicom-web/studies?${q}`)), q).toEqual([]);
  });

  it('answers 404 to an original UID in the URL, naming only what was asked', async () => {
    const r = await get(RESEARCHER, `/dicom-web/studies/${CT.study}/metadata`);
    expect(r.status).toBe(404);
    expect(json(r).error ?? json(r)).toBeDefined();
  });
});

describe('instances for a researcher', () => {
  const instanceUrl = () => `/dicom-web/studies/${pseudo(CT.study)}/series/${pseudo(CT.series)}/instances/${pseudo(CT.instance)}`;

  it('are de-identified Part-10 files under their pseudonymous UIDs', async () => {
    await get(RESEARCHER, `/dicom-web/studies/${pseudo(CT.study)}/series`);
    const r = await get(RESEARCHER, instanceUrl(), 'application/dicom');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/dicom/);
    const body = text(r);
    for (const v of IDENTIFYING) expect(body, v).not.toContain(v);
    expect(body).toContain(pseudo(CT.instance));
    expect(r.body.length).toBe(Number(r.headers['content-length']));
    const clinical = await get(CLINICIAN, `/dicom-web/studies/${CT.study}/series/${CT.series}/instances/${CT.instance}`, 'application/dicom');
    expect(text(clinical)).toContain('CompressedSamples');
  });

  it('come in the syntax anyone else gets: Explicit VR Little Endian by default, another when asked', async () => {
    const url = `/dicom-web/studies/${pseudo(MR.study)}/series/${pseudo(MR.series)}/instances/${pseudo(MR.instance)}`;
    await get(RESEARCHER, `/dicom-web/studies/${pseudo(MR.study)}/series`);
    const clinical = await get(CLINICIAN, `/dicom-web/studies/${MR.study}/series/${MR.series}/instances/${MR.instance}`, 'application/dicom');
    const plain = await get(RESEARCHER, url, 'application/dicom');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe(clinical.headers['content-type']);
    expect(plain.headers['content-type']).toContain('transfer-syntax=1.2.840.10008.1.2.1');
    expect(text(plain)).toContain('1.2.840.10008.1.2.1\0');
    expect(text(plain)).not.toContain(MR.study);
    expect(text(plain)).toContain(pseudo(MR.instance));
    const jls = await get(RESEARCHER, url, 'application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80');
    expect(jls.status).toBe(200);
    expect(jls.headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.4.80');
    expect(text(jls)).not.toContain(MR.study);
    expect(text(jls)).toContain(pseudo(MR.instance));
    expect(jls.body.length).toBeLessThan(plain.body.length);
  });

  it('serve their frames as stored', async () => {
    const r = await get(RESEARCHER, `${instanceUrl()}/frames/1`, 'multipart/related; type="application/octet-stream"');
    const c = await get(
      CLINICIAN,
      `/dicom-web/studies/${CT.study}/series/${CT.series}/instances/${CT.instance}/frames/1`,
      'multipart/related; type="application/octet-stream"',
    );
    expect(r.status).toBe(200);
    const frame = (x: typeof r) => parseMultipart(x.body, x.headers['content-type'])[0].body;
    expect(frame(r).equals(frame(c))).toBe(true);
  });

  it('withhold an instance that may carry burned-in text, and say so', async () => {
    await get(RESEARCHER, `/dicom-web/studies/${pseudo(withheld.studyUid)}/series`);
    await get(RESEARCHER, `/dicom-web/studies?StudyInstanceUID=${pseudo(withheld.studyUid)}`);
    const url = `/dicom-web/studies/${pseudo(withheld.studyUid)}/series/${pseudo(withheld.seriesUid)}/instances/${pseudo(withheld.sopInstanceUid)}`;
    await get(RESEARCHER, `/dicom-web/studies/${pseudo(withheld.studyUid)}/series/${pseudo(withheld.seriesUid)}/instances`);
    const r = await get(RESEARCHER, url, 'application/dicom');
    expect(r.status).toBe(403);
    expect(text(r)).toMatch(/withheld from this de-identified view/);
    expect(text(r)).not.toContain(withheld.sopInstanceUid);
    expect((await get(RESEARCHER, `${url}/frames/1`, 'multipart/related; type="application/octet-stream"')).status).toBe(403);
    expect((await get(CLINICIAN, `/dicom-web/studies/${withheld.studyUid}`, 'multipart/related; type="application/dicom"')).status).toBe(200);
  });

  it('never render or make a thumbnail of an instance they withhold', async () => {
    await get(RESEARCHER, `/dicom-web/studies?StudyInstanceUID=${pseudo(withheld.studyUid)}`);
    await get(RESEARCHER, `/dicom-web/studies/${pseudo(withheld.studyUid)}/series/${pseudo(withheld.seriesUid)}/instances`);
    const study = `/dicom-web/studies/${pseudo(withheld.studyUid)}`;
    const instance = `${study}/series/${pseudo(withheld.seriesUid)}/instances/${pseudo(withheld.sopInstanceUid)}`;
    for (const url of [`${instance}/rendered`, `${instance}/frames/1/rendered`, `${study}/rendered`, `${instance}/thumbnail`, `${study}/thumbnail`]) {
      const r = await get(RESEARCHER, url, 'image/jpeg');
      expect(r.status, url).toBe(403);
      expect(text(r)).toMatch(/withheld from this de-identified view/);
    }
    const c = await get(
      CLINICIAN,
      `/dicom-web/studies/${withheld.studyUid}/series/${withheld.seriesUid}/instances/${withheld.sopInstanceUid}/rendered`,
      'image/jpeg',
    );
    expect(c.status).toBe(200);
    expect(c.headers['content-type']).toMatch(/^image\/jpeg/);
  });
});

describe('the researcher matrix', () => {
  const study = () => `/dicom-web/studies/${pseudo(CT.study)}`;
  const series = () => `${study()}/series/${pseudo(CT.series)}`;
  const instance = () => `${series()}/instances/${pseudo(CT.instance)}`;
  const DICOM = 'multipart/related; type="application/dicom"';
  const OCTETS = 'multipart/related; type="application/octet-stream"';
  const endpoints: [string, () => string, string, number][] = [
    ['QIDO studies', () => '/dicom-web/studies?includefield=all', 'application/dicom+json', 200],
    ['QIDO series of a study', () => `${study()}/series?includefield=all`, 'application/dicom+json', 200],
    ['QIDO instances of a study', () => `${study()}/instances?includefield=all`, 'application/dicom+json', 200],
    ['QIDO instances of a series', () => `${series()}/instances?includefield=all`, 'application/dicom+json', 200],
    ['study metadata', () => `${study()}/metadata`, 'application/dicom+json', 200],
    ['instance metadata', () => `${instance()}/metadata`, 'application/dicom+json', 200],
    ['study', study, DICOM, 200],
    ['series', series, DICOM, 200],
    ['instance', instance, DICOM, 200],
    ['frames', () => `${instance()}/frames/1`, OCTETS, 200],
    ['pixel data as bulk data', () => `${instance()}/bulkdata/7FE00010`, OCTETS, 200],
    ['a frame that does not exist', () => `${instance()}/frames/99`, OCTETS, 404],
    ['bulk data the profile changes', () => `${instance()}/bulkdata/00100010`, OCTETS, 404],
    ['rendered study', () => `${study()}/rendered`, 'image/jpeg', 200],
    ['rendered instance', () => `${instance()}/rendered`, 'image/jpeg', 200],
    ['thumbnail', () => `${study()}/thumbnail`, 'image/jpeg', 200],
  ];

  it.each(endpoints)('%s: no original identifier in any byte of the answer or its headers', async (_what, url, accept, status) => {
    const r = await get(RESEARCHER, url(), accept);
    expect(r.status).toBe(status);
    const all = `${JSON.stringify(r.headers)}\n${text(r)}`;
    for (const v of IDENTIFYING) expect(all, v).not.toContain(v);
  });
});

describe('pseudonyms', () => {
  it('are the same from another replica and after a restart (same key, same table)', async () => {
    await get(RESEARCHER, '/dicom-web/studies');
    const research = new Research(DEID, DEID.key);
    const other = supertest(createApp({ ...a.deps, research, presenter: research.presenter }).callback());
    const r = await other
      .get(`/dicom-web/studies/${pseudo(CT.study)}/metadata`)
      .set('Authorization', `Bearer ${a.token(RESEARCHER)}`)
      .buffer(true)
      .parse(binaryParser);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())[0]['0020000D'].Value).toEqual([pseudo(CT.study)]);
  });

  it('differ in another project', () => {
    const other = new Research({ key: DEID.key, views: parseDeidViews('researcher@other=modified-dates', undefined) }, DEID.key);
    const v = other.viewOf(newCaller({ sub: 'x', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' }))!;
    expect(v.deidentifier.uid(CT.study)).not.toBe(pseudo(CT.study));
  });

  it('leave a clinician who is also a researcher reading as stored', async () => {
    expect(text(await get({ sub: 'both', roles: ['clinician', 'researcher'] }, '/dicom-web/studies'))).toContain('CompressedSamples');
  });
});

describe('labels still apply', () => {
  it('hide a labelled study from a researcher without clearance, even by its pseudonym', async () => {
    const studies = json(await get(RESEARCHER, '/dicom-web/studies'));
    expect(studies.map((s: any) => s['0020000D'].Value[0])).not.toContain(pseudo(labelled.studyUid));
    await a.deps
      .db('deid_uids')
      .insert({ project: 'researcher', pseudo_uid: pseudo(labelled.studyUid), original_uid: labelled.studyUid })
      .onConflict()
      .ignore();
    expect((await get(RESEARCHER, `/dicom-web/studies/${pseudo(labelled.studyUid)}/metadata`)).status).toBe(404);
    const cleared = { sub: 'res-vip', roles: ['researcher'] as const, clearances: ['vip'] };
    const seen = json(await get({ ...cleared, roles: [...cleared.roles] }, '/dicom-web/studies'));
    expect(seen.map((s: any) => s['0020000D'].Value[0])).toContain(pseudo(labelled.studyUid));
  });
});
