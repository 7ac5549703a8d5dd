import fs from 'node:fs';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, fixturesDir, multipartBody, sample, type TestArchive } from '../helpers.js';

const { DicomMetaDictionary, DicomDict } = dcmjs.data;
type Json = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

/** A Part-10 file (Explicit VR LE) with the chosen attributes. */
function part10(dataset: Record<string, unknown>): Buffer {
  const meta = {
    MediaStorageSOPClassUID: dataset.SOPClassUID,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.1',
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset({ ...meta }));
  dict.dict = DicomMetaDictionary.denaturalizeDataset({ ...dataset });
  return Buffer.from(dict.write());
}

/** chrJapMulti.dcm from the project fixtures, or the shared samples it is copied from. */
function japaneseSample(): Buffer {
  const own = path.join(fixturesDir, 'chrJapMulti.dcm');
  return fs.existsSync(own) ? fs.readFileSync(own) : fs.readFileSync(path.resolve(fixturesDir, '../../../../shared/dicom-samples/chrJapMulti.dcm'));
}

const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';
const A = '2.25.1001';
const B = '2.25.1002';
const C = '2.25.1003';
const D = '2.25.1004';
const A1 = '2.25.1101';
const A2 = '2.25.1102';

const studyA = {
  StudyInstanceUID: A,
  PatientName: 'Doe^John',
  PatientID: 'PID-A',
  StudyDate: '20200115',
  StudyTime: '103000',
  AccessionNumber: 'ACC1',
  StudyDescription: 'Chest',
  ReferringPhysicianName: 'Smith^Ann',
  StudyID: 'S1',
  PatientBirthDate: '19700101',
  PatientSex: 'M',
};
const studyB = { StudyInstanceUID: B, PatientName: 'DOELING^Jane', PatientID: 'PID-B', StudyDate: '20210601', StudyTime: '0815' };
const studyC = { StudyInstanceUID: C, PatientName: 'Roe^Richard', PatientID: 'pid-a', StudyDate: '20191231', StudyTime: '235959.5' };
const studyD = { StudyInstanceUID: D, SpecificCharacterSet: 'ISO_IR 192', PatientName: 'Yamada^Tarou=山田^太郎', PatientID: 'PID-D', StudyDate: '20220101' };

function instance(study: Record<string, unknown>, series: Record<string, unknown>, sop: string, extra: Record<string, unknown> = {}): Buffer {
  return part10({ SOPClassUID: series.Modality === 'MR' ? MR : CT, SOPInstanceUID: sop, ...study, ...series, ...extra });
}

let t: TestArchive;
let ctStudy: string;
let japStudy: string;

async function get(url: string) {
  return t.request.get(`/dicom-web${url}`);
}
async function uids(url: string, tag = '0020000D'): Promise<string[]> {
  const res = await get(url);
  expect(res.status).toBe(200);
  return (res.body as Json[]).map((r) => r[tag].Value![0] as string);
}

beforeAll(async () => {
  t = await createTestArchive();
  const seriesA1 = {
    SeriesInstanceUID: A1,
    Modality: 'CT',
    SeriesNumber: '1',
    PerformedProcedureStepStartDate: '20200115',
    PerformedProcedureStepStartTime: '1031',
  };
  const seriesA2 = { SeriesInstanceUID: A2, Modality: 'MR', SeriesNumber: '2', SeriesDescription: 'T1' };
  const files = [
    instance(studyA, seriesA1, '2.25.1201', { InstanceNumber: '1', ImageType: ['ORIGINAL', 'PRIMARY'] }),
    instance(studyA, seriesA1, '2.25.1202', { InstanceNumber: '2' }),
    instance(studyA, seriesA2, '2.25.1203', { InstanceNumber: '1' }),
    instance(studyB, { SeriesInstanceUID: '2.25.1104', Modality: 'CT', SeriesNumber: '1' }, '2.25.1204'),
    instance(studyC, { SeriesInstanceUID: '2.25.1105', Modality: 'US', SeriesNumber: '1' }, '2.25.1205'),
    instance(studyD, { SeriesInstanceUID: '2.25.1106', Modality: 'OT', SeriesNumber: '1' }, '2.25.1206'),
    sample('CT_small.dcm'),
    japaneseSample(),
  ];
  const { body, contentType } = multipartBody(files);
  const res = await t.request.post('/dicom-web/studies').set('content-type', contentType).send(body);
  expect(res.status).toBe(200);
  // The samples' own UIDs, found by SOP class: CR for the Japanese one, CT outside the synthetic studies.
  [japStudy] = await uids('/instances?SOPClassUID=1.2.840.10008.5.1.4.1.1.1');
  [ctStudy] = (await uids(`/instances?SOPClassUID=${CT}`)).filter((u) => ![A, B, C, D].includes(u));
});

afterAll(async () => {
  await t?.close();
});

describe('QIDO-RS paths', () => {
  it('GET /studies answers application/dicom+json with every study, newest StudyDate first', async () => {
    const res = await get('/studies');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/dicom\+json/);
    const got = (res.body as Json[]).map((r) => r['0020000D'].Value![0]);
    expect(got.length).toBe(6);
    expect(got.indexOf(D)).toBeLessThan(got.indexOf(B));
    expect(got.indexOf(B)).toBeLessThan(got.indexOf(A));
    expect(got.indexOf(A)).toBeLessThan(got.indexOf(C));
  });

  it('GET /series returns series carrying the study attributes (§10.6.3.3.2)', async () => {
    const res = await get('/series?PatientID=PID-A');
    const body = res.body as Json[];
    expect(body.map((r) => r['0020000E'].Value![0])).toEqual([A1, A2]);
    expect(body[0]['00100010'].Value).toEqual([{ Alphabetic: 'Doe^John' }]);
    expect(body[0]['00201208'].Value).toEqual([3]);
  });

  it('GET /instances returns instances carrying study and series attributes', async () => {
    const res = await get(`/instances?StudyInstanceUID=${A}&SeriesInstanceUID=${A1}`);
    const body = res.body as Json[];
    expect(body.map((r) => r['00080018'].Value![0])).toEqual(['2.25.1201', '2.25.1202']);
    expect(body[0]['00100020'].Value).toEqual(['PID-A']);
    expect(body[0]['00080060'].Value).toEqual(['CT']);
    expect(body[0]['00080016'].Value).toEqual([CT]);
  });

  it("GET /studies/{study}/series returns that study's series in SeriesNumber order, without study attributes", async () => {
    const res = await get(`/studies/${A}/series`);
    const body = res.body as Json[];
    expect(body.map((r) => r['0020000E'].Value![0])).toEqual([A1, A2]);
    expect(body[0]['00100020']).toBeUndefined();
    expect(body[1]['0008103E'].Value).toEqual(['T1']);
  });

  it("GET /studies/{study}/instances returns the study's instances with series attributes", async () => {
    const res = await get(`/studies/${A}/instances`);
    const body = res.body as Json[];
    expect(body.map((r) => r['00080018'].Value![0]).sort()).toEqual(['2.25.1201', '2.25.1202', '2.25.1203']);
    expect(body.every((r) => r['0020000E'] !== undefined && r['00080060'] !== undefined)).toBe(true);
    expect(body[0]['00100010']).toBeUndefined();
  });

  it('GET /studies/{study}/series/{series}/instances returns its instances with absolute RetrieveURLs', async () => {
    const res = await get(`/studies/${A}/series/${A1}/instances`);
    const body = res.body as Json[];
    expect(body.map((r) => r['00200013'].Value![0])).toEqual([1, 2]);
    expect(body[0]['00081190'].Value![0]).toMatch(new RegExp(`^https?://[^/]+/dicom-web/studies/${A}/series/${A1}/instances/2\\.25\\.1201$`));
  });

  it('an unknown study on a nested path is an empty result', async () => {
    const res = await get('/studies/2.25.999999/series');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
  });
});

describe('QIDO-RS matching (PS3.4 §C.2.2.2)', () => {
  it('single value matching is exact and case-sensitive', async () => {
    expect(await uids('/studies?PatientID=PID-A')).toEqual([A]);
  });

  it('accepts a matching key given as an 8-digit tag', async () => {
    expect(await uids('/studies?00100020=pid-a')).toEqual([C]);
  });

  it('matches a comma-separated UID list', async () => {
    expect((await uids(`/studies?StudyInstanceUID=${A},${C}`)).sort()).toEqual([A, C]);
  });

  it('matches a backslash-separated UID list', async () => {
    expect((await uids(`/studies?StudyInstanceUID=${A}%5C${B}`)).sort()).toEqual([A, B]);
  });

  it('"*" matches any sequence of characters, case-sensitively for non-PN', async () => {
    expect((await uids('/studies?PatientID=PID-*')).sort()).toEqual([A, B, D]);
  });

  it('"?" matches a single character', async () => {
    expect((await uids('/studies?PatientID=PID-%3F&StudyDate=-20211231')).sort()).toEqual([A, B]);
  });

  it('PN wildcards are case-insensitive', async () => {
    expect((await uids('/studies?PatientName=doe*')).sort()).toEqual([A, B]);
  });

  it('a PN value without wildcards matches a whole component group, case-insensitively', async () => {
    expect(await uids('/studies?PatientName=doe%5Ejohn')).toEqual([A]);
  });

  it('a PN value matches the Ideographic component group too', async () => {
    expect(await uids(`/studies?PatientName=${encodeURIComponent('山田*')}`)).toEqual([D]);
  });

  it('a PN wildcard never spans component groups', async () => {
    expect(await uids('/studies?PatientName=Yamada*Tarou*')).toEqual([D]);
    expect(await uids(`/studies?PatientName=${encodeURIComponent('Tarou*山田')}`)).toEqual([]);
  });

  it('matches ReferringPhysicianName as a PN', async () => {
    expect(await uids('/studies?ReferringPhysicianName=SMITH*')).toEqual([A]);
  });

  it('matches a closed date range inclusively', async () => {
    expect((await uids('/studies?StudyDate=20191231-20200115')).sort()).toEqual([A, C]);
  });

  it('matches an open-ended date range "a-"', async () => {
    expect((await uids('/studies?StudyDate=20210601-')).sort()).toEqual([B, D]);
  });

  it('matches an open-started date range "-b"', async () => {
    expect(await uids('/studies?StudyDate=-20191231')).toContain(C);
    expect(await uids('/studies?StudyDate=-20191231')).not.toContain(A);
  });

  it('matches a time range against stored times of any precision', async () => {
    expect(await uids('/studies?StudyTime=0815-0815')).toEqual([B]);
    expect(await uids('/studies?StudyTime=103000.000001-1031')).toEqual([]);
    expect(await uids('/studies?StudyTime=1030-1030')).toEqual([A]);
    expect(await uids('/studies?StudyTime=235959.4-')).toEqual([C]);
  });

  it('ModalitiesInStudy matches a study with any series of that modality', async () => {
    expect(await uids('/studies?ModalitiesInStudy=MR')).toEqual([A]);
  });

  it('ModalitiesInStudy with several values matches any of them', async () => {
    expect((await uids('/studies?ModalitiesInStudy=MR,US')).sort()).toEqual([A, C]);
  });

  it('matches series keys at series level', async () => {
    expect(await uids(`/studies/${A}/series?Modality=MR`, '0020000E')).toEqual([A2]);
    expect(await uids(`/studies/${A}/series?SeriesNumber=1`, '0020000E')).toEqual([A1]);
    expect(await uids('/series?PerformedProcedureStepStartTime=1030-1035', '0020000E')).toEqual([A1]);
  });

  it('matches study keys in an instance query (relational)', async () => {
    expect((await uids('/instances?StudyDate=20200101-20200131', '00080018')).sort()).toEqual(['2.25.1201', '2.25.1202', '2.25.1203']);
  });

  it('matches instance keys', async () => {
    expect(await uids(`/studies/${A}/instances?SOPClassUID=${MR}`, '00080018')).toEqual(['2.25.1203']);
    expect(await uids(`/studies/${A}/series/${A1}/instances?InstanceNumber=2`, '00080018')).toEqual(['2.25.1202']);
  });

  it('fuzzymatching=true is answered with literal matching and the §8.3.4.2 Warning', async () => {
    const res = await get('/studies?PatientName=doe&fuzzymatching=true');
    expect(res.body).toEqual([]);
    expect(res.headers.warning).toMatch(
      /^299 https?:\/\/[^ ]+\/dicom-web: The fuzzymatching parameter is not supported\. Only literal matching has been performed\.$/,
    );
  });

  it('emptyvaluematching=true is answered with a Warning (§8.3.4.5)', async () => {
    const res = await get('/studies?PatientID=PID-A&emptyvaluematching=true');
    expect(res.status).toBe(200);
    expect(res.headers.warning).toMatch(/The emptyvaluematching parameter is not supported\. Empty Value Matching has not been performed\.$/);
  });
});

describe('QIDO-RS results (PS3.18 §10.6.3)', () => {
  it('counts series and instances of a study and lists its modalities sorted', async () => {
    const [r] = (await get(`/studies?StudyInstanceUID=${A}`)).body as Json[];
    expect(r['00201206']).toEqual({ vr: 'IS', Value: [2] });
    expect(r['00201208']).toEqual({ vr: 'IS', Value: [3] });
    expect(r['00080061']).toEqual({ vr: 'CS', Value: ['CT', 'MR'] });
    expect(r['00081190'].Value![0]).toMatch(new RegExp(`/dicom-web/studies/${A}$`));
  });

  it('counts the instances of a series', async () => {
    const body = (await get(`/studies/${A}/series`)).body as Json[];
    expect(body.map((r) => r['00201209'].Value)).toEqual([[2], [1]]);
  });

  it('sends required attributes empty when the study has no value', async () => {
    const [r] = (await get(`/studies?StudyInstanceUID=${B}`)).body as Json[];
    expect(r['00080050']).toEqual({ vr: 'SH' });
    expect(r['00080090']).toEqual({ vr: 'PN' });
    expect(r['00100040']).toEqual({ vr: 'CS' });
  });

  it('orders the attributes of each result by tag', async () => {
    const body = (await get('/instances')).body as Json[];
    for (const r of body) expect(Object.keys(r)).toEqual(Object.keys(r).sort());
  });

  it("returns the Japanese sample's PatientName as stored", async () => {
    const [r] = (await get(`/studies?StudyInstanceUID=${japStudy}`)).body as Json[];
    expect(r['00100010'].Value).toEqual([{ Alphabetic: 'やまだ^たろう' }]);
  });

  it('includefield by keyword adds that attribute', async () => {
    const [r] = (await get(`/studies?StudyInstanceUID=${A}&includefield=StudyDescription`)).body as Json[];
    expect(r['00081030'].Value).toEqual(['Chest']);
  });

  it('includefield by tag and comma list, percent-encoded as OHIF sends it', async () => {
    const [r] = (await get(`/studies?StudyInstanceUID=${A}&includefield=00081030%2C00080060`)).body as Json[];
    expect(r['00081030'].Value).toEqual(['Chest']);
    expect(r['00080060']).toBeUndefined();
  });

  it('includefield=all returns every stored attribute of the level', async () => {
    const [r] = (await get(`/studies/${A}/series?SeriesInstanceUID=${A1}&includefield=all`)).body as Json[];
    expect(r['00400244'].Value).toEqual(['20200115']);
    expect(r['00100010']).toBeUndefined();
  });

  it('includefield at instance level reads the stored metadata', async () => {
    const [r] = (await get(`/studies/${A}/series/${A1}/instances?InstanceNumber=1&includefield=ImageType`)).body as Json[];
    expect(r['00080008'].Value).toEqual(['ORIGINAL', 'PRIMARY']);
  });

  it('includefield=all at instance level never returns bulk data', async () => {
    const body = (await get(`/studies/${ctStudy}/instances?includefield=all`)).body as Json[];
    expect(body.length).toBe(1);
    expect(body[0]['7FE00010']).toBeUndefined();
    expect(JSON.stringify(body)).not.toMatch(/BulkDataURI|InlineBinary/);
    expect(body[0]['00280010'].Value).toEqual([128]);
  });

  it('returns matching keys even with universal matching', async () => {
    const [r] = (await get(`/studies/${A}/series?SeriesInstanceUID=${A1}&BodyPartExamined=`)).body as Json[];
    expect(r['00180015']).toEqual({ vr: 'CS' });
  });

  it('pages with limit and offset in a stable order', async () => {
    const all = await uids('/studies');
    expect(await uids('/studies?limit=2&offset=1')).toEqual(all.slice(1, 3));
  });

  it('says how many more results remain in a Warning', async () => {
    const res = await get('/studies?limit=2');
    expect(res.headers.warning).toMatch(/^299 https?:\/\/[^ ]+\/dicom-web: There are 4 additional results that can be requested$/);
  });

  it('limit=0 returns no results and the match count in the Warning', async () => {
    const res = await get('/studies?PatientID=PID-*&limit=0');
    expect(res.body).toEqual([]);
    expect(res.headers.warning).toMatch(/There are 3 additional results/);
  });

  it('an empty result is 200 []', async () => {
    const res = await get('/studies?PatientID=nobody');
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
  });
});

describe('QIDO-RS invalid queries', () => {
  const invalid = async (url: string, names: string) => {
    const res = await get(url);
    expect(res.status).toBe(400);
    expect(res.body.message).toContain(names);
  };

  it('an unknown key is a 400 naming it', () => invalid('/studies?Bogus=1', 'Bogus'));
  it('a malformed date is a 400 naming the key', () => invalid('/studies?StudyDate=2020-13-01', 'StudyDate'));
});
