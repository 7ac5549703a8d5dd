import dcmjs from 'dcmjs';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { createApp } from '../../server/app.js';
import { Research } from '../../server/deid/research.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { binaryParser, createTestArchive, multipartBody, type TestArchive, type Who } from '../helpers.js';
import { uid } from '../synthetic.js';

// A structured report can carry a patient's name in free text: a TEXT
// item's Text Value (0040,A160) has no row of its own in PS3.15 Table
// E.1-1. The Content Sequence's row is D (a dummy) for the Basic Profile and
// C (cleaned) under the Clean Structured Content Option, so the default
// researcher view shows the report's structure with its free text replaced
// by a dummy, and a view with that option shows the text with every
// identifying value blotted out.

const { DicomMetaDictionary, DicomDict } = dcmjs.data;

const KEY = 'a-test-deid-key-that-is-long-enough-0123';
const RESEARCHER: Who = { sub: 'res-1', roles: ['researcher'] };
const CLINICIAN: Who = { sub: 'dr-1', roles: ['clinician'] };
/** The patient's names as typed into the report; none may reach a researcher in any case. */
const NAMES = [/zebulon/i, /quixote/i, /1234567/];
const code = (value: string, scheme: string, meaning: string) => ({ CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning });

const SR = { studyUid: uid(), seriesUid: uid(), sopInstanceUid: uid() };

/** A Basic Text SR whose findings name the patient in a TEXT item, and in a nested one. */
function report(): Buffer {
  const sopClassUid = '1.2.840.10008.5.1.4.1.1.88.11';
  const dataset = {
    SOPClassUID: sopClassUid,
    SOPInstanceUID: SR.sopInstanceUid,
    StudyInstanceUID: SR.studyUid,
    SeriesInstanceUID: SR.seriesUid,
    PatientName: 'Quixote^Zebulon',
    PatientID: 'MRN-1234567',
    StudyDate: '20240102',
    Modality: 'SR',
    SeriesNumber: '1',
    InstanceNumber: '1',
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [code('11528-7', 'LN', 'Radiology Report')],
    ContinuityOfContent: 'SEPARATE',
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    ContentSequence: [
      {
        RelationshipType: 'CONTAINS',
        ValueType: 'TEXT',
        ConceptNameCodeSequence: [code('121071', 'DCM', 'Finding')],
        TextValue: 'Discussed with Zebulon Quixote (MRN-1234567): no acute findings.',
      },
      {
        RelationshipType: 'CONTAINS',
        ValueType: 'CONTAINER',
        ConceptNameCodeSequence: [code('121070', 'DCM', 'Findings')],
        ContinuityOfContent: 'SEPARATE',
        ContentSequence: [
          {
            RelationshipType: 'CONTAINS',
            ValueType: 'TEXT',
            ConceptNameCodeSequence: [code('121071', 'DCM', 'Finding')],
            TextValue: 'Mr QUIXOTE tolerated the contrast well.',
          },
        ],
      },
    ],
  };
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: SR.sopInstanceUid,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.1',
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}

let a: TestArchive;

/** GETs as a researcher of `app`'s view. */
const reader = (app: ReturnType<typeof createApp>) => (url: string, accept: string) =>
  supertest(app.callback())
    .get(url)
    .set('Authorization', `Bearer ${a.token(RESEARCHER)}`)
    .set('Accept', accept)
    .buffer(true)
    .parse(binaryParser);

/** Every response a researcher can read of the report, by the pseudonymous UIDs its view shows. */
async function everything(app: ReturnType<typeof createApp>, research: Research): Promise<{ url: string; body: Buffer; status: number }[]> {
  const get = reader(app);
  const d = research.viewOf(newCaller({ sub: 'x', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' }))!.deidentifier;
  const p = { study: d.uid(SR.studyUid), series: d.uid(SR.seriesUid), instance: d.uid(SR.sopInstanceUid) };
  const instance = `/dicom-web/studies/${p.study}/series/${p.series}/instances/${p.instance}`;
  const wado = `/wado?requestType=WADO&studyUID=${p.study}&seriesUID=${p.series}&objectUID=${p.instance}`;
  const out = [];
  for (const [url, accept] of [
    [`/dicom-web/studies?includefield=all`, 'application/dicom+json'],
    [`/dicom-web/studies/${p.study}/instances?includefield=all`, 'application/dicom+json'],
    [`/dicom-web/studies/${p.study}/metadata`, 'application/dicom+json'],
    [`${instance}/metadata`, 'application/dicom+json'],
    [instance, 'application/dicom'],
    [`/dicom-web/studies/${p.study}`, 'multipart/related; type="application/dicom"'],
    [`${wado}&contentType=text/html`, '*/*'],
    [`${wado}&contentType=text/plain`, '*/*'],
    [wado, '*/*'],
    [`${wado}&contentType=application/dicom`, '*/*'],
  ]) {
    const r = await get(url, accept);
    out.push({ url, body: r.body as Buffer, status: r.status });
  }
  return out;
}

beforeAll(async () => {
  a = await createTestArchive({ deid: { key: KEY, views: parseDeidViews('researcher=modified-dates', undefined) } });
  const m = multipartBody([report()]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

describe('a structured report for a researcher', () => {
  it('shows a clinician the names typed into it', async () => {
    const r = await a
      .as(CLINICIAN)
      .get(`/wado?requestType=WADO&studyUID=${SR.studyUid}&seriesUID=${SR.seriesUid}&objectUID=${SR.sopInstanceUid}&contentType=text/plain`)
      .buffer(true)
      .parse(binaryParser);
    expect(r.status).toBe(200);
    expect(r.body.toString('utf8')).toMatch(/Zebulon Quixote/);
  });

  it('in the default view (Basic Profile, modified dates) carries none of its text in any byte of any response', async () => {
    const responses = await everything(a.app, a.deps.research!);
    for (const r of responses) {
      expect(r.status, r.url).toBe(200);
      for (const name of NAMES) expect(r.body.toString('latin1'), `${r.url} ${name}`).not.toMatch(name);
      expect(r.body.toString('latin1'), r.url).not.toMatch(/no acute findings/);
    }
    const text = responses.find((r) => r.url.endsWith('text/plain'))!.body.toString('utf8');
    expect(text).toMatch(/Finding: ANONYMIZED/);
  });

  it('with the Clean Structured Content Option keeps the report, its identifying values blotted out', async () => {
    const research = new Research({ key: KEY, views: parseDeidViews('researcher=modified-dates,clean-structured-content', undefined) }, KEY);
    const app = createApp({ ...a.deps, research, presenter: research.presenter });
    const responses = await everything(app, research);
    for (const r of responses) {
      expect(r.status, r.url).toBe(200);
      for (const name of NAMES) expect(r.body.toString('latin1'), `${r.url} ${name}`).not.toMatch(name);
    }
    const text = responses.find((r) => r.url.endsWith('text/plain'))!.body.toString('utf8');
    expect(text).toMatch(/no acute findings/);
    expect(text).toMatch(/tolerated the contrast well/);
  });
});
