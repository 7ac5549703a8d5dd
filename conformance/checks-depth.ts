// Checks of the less common parts of PS3.18 and of IHE IOCM: the capabilities
// description (§8.9, Annex H), STOW-RS of metadata with bulk data
// (§10.5.1.4), and a rejection note hiding what it rejects (IHE RAD TF-2
// IOCM, PS3.16 CID 7010).
import { buildImage, buildPart10, newUid } from './fixtures.js';
import {
  assert,
  DICOM_JSON,
  expectStatus,
  first,
  get,
  jsonArray,
  multipartOf,
  req,
  stow,
  stowResult,
  wadoPath,
  type Check,
  type Ctx,
  type Res,
} from './http.js';
import { bytesEqual } from './multipart.js';

const enc = new TextEncoder();

/** A multipart/related body whose parts may carry a Content-Location. */
function related(type: string, parts: { contentType: string; location?: string; body: Uint8Array }[]): { contentType: string; body: Uint8Array } {
  const boundary = `cnf-${newUid().slice(5, 25)}`;
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    chunks.push(
      enc.encode(`--${boundary}\r\nContent-Type: ${p.contentType}\r\n${p.location ? `Content-Location: ${p.location}\r\n` : ''}\r\n`),
      p.body,
      enc.encode('\r\n'),
    );
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    body.set(c, o);
    o += c.length;
  }
  return { contentType: `multipart/related; type="${type}"; boundary=${boundary}`, body };
}

async function qidoInstance(ctx: Ctx, study: string, sop: string): Promise<Res> {
  return get(ctx, `/studies/${study}/instances?SOPInstanceUID=${sop}`, DICOM_JSON);
}

/** A patient of these checks' own, so the searches of other checks by the synthetic patient find only their studies. */
const PATIENT = { PatientID: `CNFD${newUid().slice(-8)}`, PatientName: 'Cnfdepth^Bob' };

const found = (r: Res) => r.status === 200 && r.bytes.length > 0 && jsonArray(r).length > 0;

export const depthChecks: Check[] = [
  {
    name: 'Capabilities §8.9 OPTIONS on the base: a WADL document describing /studies',
    run: async (ctx) => {
      const r = await req(ctx, 'OPTIONS', '', { headers: { Accept: 'application/vnd.sun.wadl+xml' } });
      expectStatus(r, 200);
      assert(/wadl/.test(r.contentType), `Content-Type is "${r.contentType}", expected application/vnd.sun.wadl+xml`);
      const text = r.text();
      assert(/<application[\s>]/.test(text) && /<resources[\s>]/.test(text), 'the body has no WADL application/resources elements');
      assert(/path="[^"]*studies/.test(text), 'no resource path names studies');
      return `${r.bytes.length} bytes of WADL`;
    },
  },
  {
    name: 'STOW §10.5.1.4 DICOM JSON metadata with a bulk data part → stored, metadata and pixels retrievable',
    run: async (ctx) => {
      const [study, series, sop] = [newUid(), newUid(), newUid()];
      const pixels = new Uint8Array(16).map((_, k) => k * 9);
      const meta = {
        '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.7'] },
        '00080018': { vr: 'UI', Value: [sop] },
        '00080060': { vr: 'CS', Value: ['OT'] },
        '00100010': { vr: 'PN', Value: [{ Alphabetic: PATIENT.PatientName }] },
        '00100020': { vr: 'LO', Value: [PATIENT.PatientID] },
        '0020000D': { vr: 'UI', Value: [study] },
        '0020000E': { vr: 'UI', Value: [series] },
        '00280002': { vr: 'US', Value: [1] },
        '00280004': { vr: 'CS', Value: ['MONOCHROME2'] },
        '00280010': { vr: 'US', Value: [4] },
        '00280011': { vr: 'US', Value: [4] },
        '00280100': { vr: 'US', Value: [8] },
        '00280101': { vr: 'US', Value: [8] },
        '00280102': { vr: 'US', Value: [7] },
        '00280103': { vr: 'US', Value: [0] },
        '7FE00010': { vr: 'OB', BulkDataURI: `pixels-${sop}` },
      };
      const b = related(DICOM_JSON, [
        { contentType: DICOM_JSON, body: enc.encode(JSON.stringify([meta])) },
        { contentType: 'application/octet-stream', location: `pixels-${sop}`, body: pixels },
      ]);
      const r = await req(ctx, 'POST', '/studies', { headers: { 'Content-Type': b.contentType, Accept: DICOM_JSON }, body: b.body });
      expectStatus(r, 200);
      assert(stowResult(r).ok.has(sop), 'the instance is not in ReferencedSOPSequence');
      const path = `/studies/${study}/series/${series}/instances/${sop}`;
      const [m] = jsonArray(await get(ctx, `${path}/metadata`, DICOM_JSON));
      assert(first(m, '00100020') === PATIENT.PatientID, 'metadata does not hold the Patient ID sent');
      const f = await get(ctx, `${path}/frames/1`, 'multipart/related; type="application/octet-stream"');
      expectStatus(f, 200);
      const [part] = multipartOf(f, 'application/octet-stream');
      assert(part && bytesEqual(part.body, pixels), 'frame 1 is not the pixel data part sent');
      return 'stored from JSON and bulk data';
    },
  },
  {
    name: 'IHE IOCM a rejection note (KOS titled 113001) hides the instance it rejects from QIDO; the note stays findable',
    run: async (ctx) => {
      const image = buildImage('rejected', PATIENT);
      const stored = await stow(ctx, '/studies', [{ body: image.bytes, contentType: 'application/dicom' }]);
      expectStatus(stored, 200);
      assert(found(await qidoInstance(ctx, image.study, image.sop)), 'the instance to reject is not found after it was stored');
      const noteUid = newUid();
      const ref = { ReferencedSOPClassUID: image.sopClass, ReferencedSOPInstanceUID: image.sop };
      const note = buildPart10({
        SOPClassUID: '1.2.840.10008.5.1.4.1.1.88.59',
        SOPInstanceUID: noteUid,
        StudyInstanceUID: image.study,
        SeriesInstanceUID: newUid(),
        Modality: 'KO',
        SeriesNumber: '99',
        InstanceNumber: '1',
        ...PATIENT,
        ContentDate: '20260101',
        ContentTime: '120000',
        ValueType: 'CONTAINER',
        ContinuityOfContent: 'SEPARATE',
        ConceptNameCodeSequence: [{ CodeValue: '113001', CodingSchemeDesignator: 'DCM', CodeMeaning: 'Rejected for Quality Reasons' }],
        ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '2010' }],
        CurrentRequestedProcedureEvidenceSequence: [
          { StudyInstanceUID: image.study, ReferencedSeriesSequence: [{ SeriesInstanceUID: image.series, ReferencedSOPSequence: [ref] }] },
        ],
        ContentSequence: [{ RelationshipType: 'CONTAINS', ValueType: 'IMAGE', ReferencedSOPSequence: [ref] }],
      });
      const r = await stow(ctx, '/studies', [{ body: note, contentType: 'application/dicom' }]);
      expectStatus(r, 200);
      assert(!found(await qidoInstance(ctx, image.study, image.sop)), 'the rejected instance is still found by QIDO');
      assert(found(await qidoInstance(ctx, image.study, noteUid)), 'the rejection note itself is not found by QIDO');
      const w = await get(ctx, wadoPath(image), 'multipart/related; type="application/dicom"');
      assert(w.status === 404 || w.status === 410, `retrieving the rejected instance answered ${w.status}, not 404`);
      return 'rejected instance hidden, note kept';
    },
  },
];
