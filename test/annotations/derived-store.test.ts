import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { newCaller } from '../../server/access.js';
import { archiveContext, RefusedInstance, storeInstance } from '../../server/archive.js';
import { createTestArchive, multipartBody, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';
import { keyObject } from '../dicomweb/kos.js';
import { GSPS, measurementReport, SEGMENTATION, type MeasuredImage } from './sr.js';

// A reader (the clinician role: may search and retrieve, not store) may
// store derived objects, such as the measurement report the bundled viewer
// saves, into a study it can see, and nothing else: never a new study or
// patient, never an image, never beside the images in their series. The new
// series takes the study's labels, and the audit row names what was stored.
//
// The data: study OPEN (no labels) and study CARDIO (labelled "cardio",
// which the reader is cleared for), both holding one image of patient SYN-1;
// study VIP (labelled "vip", which the reader is not cleared for).

const JSON_ACCEPT = 'application/dicom+json';
const READER: Who = { sub: 'dr-reader', roles: ['clinician'], clearances: ['cardio'] };
const NOT_AUTHORIZED = 0x0124;

let a: TestArchive;
const images: Record<'open' | 'cardio' | 'vip', MeasuredImage> = {} as never;

beforeAll(async () => {
  a = await createTestArchive();
  for (const name of ['open', 'cardio', 'vip'] as const) {
    const img = syntheticInstance({ Modality: 'CT', rows: 16, columns: 16 });
    images[name] = { studyUid: img.studyUid, seriesUid: img.seriesUid, sopInstanceUid: img.sopInstanceUid };
    expect((await stow([img.bytes], a.request)).status).toBe(200);
  }
  expect((await a.request.put(`/api/studies/${images.cardio.studyUid}/labels`).send({ labels: ['cardio'] })).status).toBe(200);
  expect((await a.request.put(`/api/studies/${images.vip.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
});

afterAll(async () => {
  await a?.close();
});

function stow(parts: Buffer[], who = a.as(READER), target = '/dicom-web/studies') {
  const { body, contentType } = multipartBody(parts);
  return who.post(target).set('Content-Type', contentType).set('Accept', JSON_ACCEPT).send(body);
}

type Item = Record<string, { Value?: unknown[] }>;
const failures = (body: Item) => (body['00081198']?.Value ?? []) as Item[];
const stored = (body: Item) => (body['00081199']?.Value ?? []) as Item[];
const reasonOf = (item: Item) => item['00081197']?.Value?.[0];
const uidOf = (item: Item) => item['00081155']?.Value?.[0];

async function instanceRows(sopInstanceUid: string) {
  return a.deps.db('instances').where({ sop_instance_uid: sopInstanceUid });
}

/** The blob files the fs store holds (the s3 project checks the index rows only). */
function blobCount(): number {
  if (a.storage !== 'fs' || !fs.existsSync(a.blobDir)) return 0;
  return (fs.readdirSync(a.blobDir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(a.blobDir, f)).isFile()).length;
}

describe('a reader storing a derived object', () => {
  it('stores a measurement report into a study it can see', async () => {
    const sr = measurementReport(images.open);
    const res = await stow([sr.bytes]);
    expect(res.status).toBe(200);
    expect(stored(res.body).map(uidOf)).toEqual([sr.sopInstanceUid]);
    expect(await instanceRows(sr.sopInstanceUid)).toHaveLength(1);
  });

  it('finds the stored report in the study by QIDO, as the viewer lists it', async () => {
    const sr = measurementReport(images.open);
    expect((await stow([sr.bytes])).status).toBe(200);
    const res = await a.as(READER).get(`/dicom-web/studies/${images.open.studyUid}/series?Modality=SR`).set('Accept', JSON_ACCEPT);
    expect(res.status).toBe(200);
    expect((res.body as Item[]).map((s) => s['0020000E']?.Value?.[0])).toContain(sr.seriesUid);
  });

  it('stores a segmentation, a presentation state and a key object selection too', async () => {
    const seg = measurementReport(images.open, { sopClassUid: SEGMENTATION, Modality: 'SEG' });
    const pr = measurementReport(images.open, { sopClassUid: GSPS, Modality: 'PR' });
    const kos = keyObject(images.open.studyUid, [images.open], '113000');
    const res = await stow([seg.bytes, pr.bytes, kos.bytes]);
    expect(res.status).toBe(200);
    expect(stored(res.body).map(uidOf)).toEqual([seg.sopInstanceUid, pr.sopInstanceUid, kos.sopInstanceUid]);
  });

  it('names the derived object and its SOP Class in the audit row', async () => {
    const sr = measurementReport(images.open);
    expect((await stow([sr.bytes])).status).toBe(200);
    const row = await a.deps.db('audit_events').where('action', 'store').whereRaw('? = any(instance_uids)', [sr.sopInstanceUid]).first();
    expect(row.sub).toBe(READER.sub);
    expect(row.outcome).toBe('success');
    expect(row.detail.derived).toEqual([
      { sopInstanceUid: sr.sopInstanceUid, sopClass: 'Comprehensive 3D SR Storage', seriesUid: sr.seriesUid, studyUid: images.open.studyUid },
    ]);
  });

  it("gives the new series the study's labels", async () => {
    const sr = measurementReport(images.cardio);
    expect((await stow([sr.bytes])).status).toBe(200);
    const series = await a.deps.db('series').where({ series_uid: sr.seriesUid }).first('labels');
    expect(series.labels).toEqual(['cardio']);
    const study = await a.deps.db('studies').where({ study_uid: images.cardio.studyUid }).first('labels');
    expect(study.labels).toEqual(['cardio']);
    // The report stays as hidden as the study: a reader without the clearance does not find it.
    const other = await a.as({ sub: 'dr-other', roles: ['clinician'] }).get(`/dicom-web/studies/${images.cardio.studyUid}/series/${sr.seriesUid}/metadata`);
    expect(other.status).toBe(404);
  });

  it('adds a later report to a series that holds derived objects only', async () => {
    const first = measurementReport(images.open);
    const second = measurementReport(images.open, { seriesUid: first.seriesUid, InstanceNumber: '2' });
    expect((await stow([first.bytes])).status).toBe(200);
    const res = await stow([second.bytes]);
    expect(res.status).toBe(200);
    expect(await instanceRows(second.sopInstanceUid)).toHaveLength(1);
  });

  it('stores through POST /studies/{study} of the study it names', async () => {
    const sr = measurementReport(images.open);
    const res = await stow([sr.bytes], a.as(READER), `/dicom-web/studies/${images.open.studyUid}`);
    expect(res.status).toBe(200);
  });
});

describe('a reader is refused, per instance, with 0x0124 and a reason', () => {
  it('a new study: nothing is created', async () => {
    const sr = measurementReport({ ...images.open, studyUid: uid() });
    const blobs = blobCount();
    const res = await stow([sr.bytes]);
    expect(res.status).toBe(409);
    expect(failures(res.body).map(reasonOf)).toEqual([NOT_AUTHORIZED]);
    expect(failures(res.body).map(uidOf)).toEqual([sr.sopInstanceUid]);
    expect(res.headers.warning).toContain('was not found');
    expect(await a.deps.db('studies').where({ study_uid: sr.studyUid })).toHaveLength(0);
    expect(await instanceRows(sr.sopInstanceUid)).toHaveLength(0);
    expect(blobCount()).toBe(blobs);
  });

  it('a study it cannot see, in the same words as a study that does not exist', async () => {
    const hidden = measurementReport(images.vip);
    const missing = measurementReport({ ...images.vip, studyUid: uid() });
    const [h, m] = [await stow([hidden.bytes]), await stow([missing.bytes])];
    expect(h.status).toBe(m.status);
    expect(failures(h.body).map(reasonOf)).toEqual([NOT_AUTHORIZED]);
    const words = (res: typeof h, sr: typeof hidden) =>
      String(res.headers.warning)
        .replace(/^299 \S+: /, '')
        .replaceAll(sr.studyUid, 'S')
        .replaceAll(sr.sopInstanceUid, 'I');
    expect(words(h, hidden)).toBe(words(m, missing));
    expect(await instanceRows(hidden.sopInstanceUid)).toHaveLength(0);
  });

  it("another patient's report into the study", async () => {
    const sr = measurementReport(images.open, { patientId: 'PID-ELSEWHERE-4417' });
    const res = await stow([sr.bytes]);
    expect(res.status).toBe(409);
    expect(failures(res.body).map(reasonOf)).toEqual([NOT_AUTHORIZED]);
    expect(res.headers.warning).toContain('Patient ID');
    // The reason names the attribute, never the patient's identifiers.
    expect(res.headers.warning).not.toContain('PID-ELSEWHERE-4417');
    expect(res.headers.warning).not.toContain('SYN-1');
    expect(await instanceRows(sr.sopInstanceUid)).toHaveLength(0);
  });

  it('an image, even into a study it can see', async () => {
    const img = syntheticInstance({ studyUid: images.open.studyUid, Modality: 'OT' });
    const blobs = blobCount();
    const res = await stow([img.bytes]);
    expect(res.status).toBe(409);
    expect(failures(res.body).map(reasonOf)).toEqual([NOT_AUTHORIZED]);
    expect(failures(res.body).map(uidOf)).toEqual([img.sopInstanceUid]);
    expect(res.headers.warning).toContain('may store only derived objects');
    expect(await instanceRows(img.sopInstanceUid)).toHaveLength(0);
    expect(blobCount()).toBe(blobs);
  });

  it('an image beside a report in one request: the report is stored, the image is not', async () => {
    const sr = measurementReport(images.open);
    const img = syntheticInstance({ studyUid: images.open.studyUid });
    const res = await stow([img.bytes, sr.bytes]);
    expect(res.status).toBe(202);
    expect(failures(res.body).map(uidOf)).toEqual([img.sopInstanceUid]);
    expect(stored(res.body).map(uidOf)).toEqual([sr.sopInstanceUid]);
  });

  it('many at once: ten explained one by one, the rest counted, so the header stays small', async () => {
    const parts = Array.from({ length: 12 }, () => syntheticInstance({ studyUid: images.open.studyUid }).bytes);
    const res = await stow(parts);
    expect(res.status).toBe(409);
    expect(failures(res.body).map(reasonOf)).toEqual(Array(12).fill(NOT_AUTHORIZED));
    const warnings = String(res.headers.warning).split(/, (?=299 )/);
    expect(warnings).toHaveLength(11);
    expect(warnings.slice(0, 10).every((w) => w.includes('may store only derived objects'))).toBe(true);
    expect(warnings[10]).toMatch(/: 2 more instances were refused$/);
  });

  it('a report into the series of the images', async () => {
    const sr = measurementReport(images.open, { seriesUid: images.open.seriesUid });
    const res = await stow([sr.bytes]);
    expect(res.status).toBe(409);
    expect(failures(res.body).map(reasonOf)).toEqual([NOT_AUTHORIZED]);
    expect(await instanceRows(sr.sopInstanceUid)).toHaveLength(0);
  });

  it('a rejection note: it would withdraw the images', async () => {
    const kos = keyObject(images.open.studyUid, [images.open], '113001');
    const res = await stow([kos.bytes]);
    expect(res.status).toBe(409);
    expect(failures(res.body).map(reasonOf)).toEqual([NOT_AUTHORIZED]);
    expect(res.headers.warning).toContain('rejection note');
    const image = await a.deps.db('instances').where({ sop_instance_uid: images.open.sopInstanceUid }).first('rejected');
    expect(image.rejected).toBe(false);
  });

  it('a report with the SOP Instance UID of a stored one, which it may not replace', async () => {
    const sr = measurementReport(images.open);
    expect((await stow([sr.bytes])).status).toBe(200);
    const again = measurementReport(images.open, { sopInstanceUid: sr.sopInstanceUid, seriesUid: sr.seriesUid, SeriesDescription: 'Changed' });
    const res = await stow([again.bytes]);
    expect(failures(res.body).map(reasonOf)).toEqual([0x0111]);
  });
});

describe('a reader storing DICOM JSON (PS3.18 §10.5.1.4)', () => {
  const dataset = (sopClassUid: string, modality: string) => ({
    '00080016': { vr: 'UI', Value: [sopClassUid] },
    '00080018': { vr: 'UI', Value: [uid()] },
    '00080060': { vr: 'CS', Value: [modality] },
    '00100020': { vr: 'LO', Value: ['SYN-1'] },
    '0020000D': { vr: 'UI', Value: [images.open.studyUid] },
    '0020000E': { vr: 'UI', Value: [uid()] },
  });

  it('stores the report and refuses the image beside it, each alone', async () => {
    const report = dataset('1.2.840.10008.5.1.4.1.1.88.11', 'SR');
    const image = dataset('1.2.840.10008.5.1.4.1.1.7', 'OT');
    const boundary = `cairn-${uid()}`;
    const body = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom+json\r\n\r\n${JSON.stringify([report, image])}\r\n--${boundary}--\r\n`);
    const res = await a
      .as(READER)
      .post('/dicom-web/studies')
      .set('Content-Type', `multipart/related; type="application/dicom+json"; boundary=${boundary}`)
      .set('Accept', JSON_ACCEPT)
      .send(body);
    expect(res.status).toBe(202);
    expect(stored(res.body).map(uidOf)).toEqual(report['00080018'].Value);
    expect(failures(res.body).map(uidOf)).toEqual(image['00080018'].Value);
    expect(failures(res.body).map(reasonOf)).toEqual([NOT_AUTHORIZED]);
    expect(res.headers.warning).toContain('may store only derived objects');
  });
});

describe('who may store what', () => {
  it('a researcher or an auditor still may not store at all (403)', async () => {
    const sr = measurementReport(images.open);
    for (const roles of [['researcher'], ['auditor']] as const) {
      const res = await stow([sr.bytes], a.as({ roles }));
      expect(res.status, roles[0]).toBe(403);
      expect(res.body.error).toBe('Forbidden');
    }
    expect(await instanceRows(sr.sopInstanceUid)).toHaveLength(0);
  });

  it('an uploader still stores images into new studies', async () => {
    const img = syntheticInstance();
    expect((await stow([img.bytes], a.as({ roles: ['uploader'] }))).status).toBe(200);
  });
});

describe('the rule in the archive, whatever the protocol', () => {
  const reader = () => newCaller({ sub: 'WS1', roles: ['clinician'], clearances: [] }, { protocol: 'dimse', callingAe: 'WS1', address: '10.0.0.7' });

  it('stores a report from a reader AE into a study it can see', async () => {
    const sr = measurementReport(images.open);
    const outcome = await storeInstance(archiveContext(a.deps), reader(), Readable.from([sr.bytes]));
    expect(outcome).toMatchObject({ ok: true, sopInstanceUid: sr.sopInstanceUid, derived: 'Comprehensive 3D SR Storage' });
  });

  it('answers a report into a hidden study as a refused instance (0x0124)', async () => {
    const sr = measurementReport(images.vip);
    const outcome = await storeInstance(archiveContext(a.deps), reader(), Readable.from([sr.bytes]));
    expect(outcome).toMatchObject({ ok: false, reason: NOT_AUTHORIZED, refused: true, sopInstanceUid: sr.sopInstanceUid });
  });

  it('refuses an image as a store the roles may not make (403), so DIMSE answers it as not authorised', async () => {
    const img = syntheticInstance({ studyUid: images.open.studyUid });
    const stored = storeInstance(archiveContext(a.deps), reader(), Readable.from([img.bytes]));
    await expect(stored).rejects.toBeInstanceOf(RefusedInstance);
    await expect(stored).rejects.toMatchObject({ status: 403, refs: { sopInstanceUid: img.sopInstanceUid } });
  });
});

describe('a reader under label rules', () => {
  let c: TestArchive;
  beforeAll(async () => {
    // Rules that would label the study and the series of any SR stored.
    c = await createTestArchive({
      labelRules: [
        { label: 'reports', level: 'study', when: [{ tag: '00080060', test: ['SR'] }] },
        { label: 'report-series', level: 'series', when: [{ tag: '00080060', test: ['SR'] }] },
      ],
    });
  });
  afterAll(async () => {
    await c?.close();
  });

  it("never changes the study's labels, and gives the series the study's and the rules' series labels", async () => {
    const img = syntheticInstance();
    expect((await stow([img.bytes], c.request)).status).toBe(200);
    expect((await c.request.put(`/api/studies/${img.studyUid}/labels`).send({ labels: ['cardio'] })).status).toBe(200);
    const sr = measurementReport({ studyUid: img.studyUid, seriesUid: img.seriesUid, sopInstanceUid: img.sopInstanceUid });
    expect((await stow([sr.bytes], c.as(READER))).status).toBe(200);
    expect((await c.deps.db('studies').where({ study_uid: img.studyUid }).first('labels')).labels).toEqual(['cardio']);
    expect((await c.deps.db('series').where({ series_uid: sr.seriesUid }).first('labels')).labels).toEqual(['cardio', 'report-series']);
  });
});

describe('a reader under DUPLICATE_POLICY=overwrite', () => {
  let b: TestArchive;
  beforeAll(async () => {
    b = await createTestArchive({ duplicatePolicy: 'overwrite' });
  });
  afterAll(async () => {
    await b?.close();
  });

  it('never replaces a stored instance', async () => {
    const img = syntheticInstance();
    const image = { studyUid: img.studyUid, seriesUid: img.seriesUid, sopInstanceUid: img.sopInstanceUid };
    expect((await stow([img.bytes], b.request)).status).toBe(200);
    const sr = measurementReport(image);
    expect((await stow([sr.bytes], b.as(READER))).status).toBe(200);
    const again = measurementReport(image, { sopInstanceUid: sr.sopInstanceUid, seriesUid: sr.seriesUid, SeriesDescription: 'Changed' });
    const res = await stow([again.bytes], b.as(READER));
    expect(failures(res.body).map(reasonOf)).toEqual([0x0111]);
    const row = await b.deps.db('instances').where({ sop_instance_uid: sr.sopInstanceUid }).first('sha256');
    expect(row.sha256).toBe(createHash('sha256').update(sr.bytes).digest('hex'));
    // An uploader may still replace it, as the policy says.
    expect((await stow([again.bytes], b.as({ roles: ['uploader'] }))).status).toBe(200);
  });
});
