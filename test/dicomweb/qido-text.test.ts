import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attributesText, storedAttributes } from '../../server/db/build-rows.js';
import type { DicomJson } from '../../server/dicom/json.js';
import { createTestArchive, multipartBody, sample, type TestArchive } from '../helpers.js';

// QIDO splices stored attribute text into its results; these pin down that the
// spliced results are what parsing and re-serialising the jsonb would give.

const { DicomMetaDictionary, DicomDict } = dcmjs.data;
const CT = '1.2.840.10008.5.1.4.1.1.2';
const STUDY = '2.25.7001';
const SERIES = '2.25.7101';

function part10(dataset: Record<string, unknown>): Buffer {
  const meta = {
    MediaStorageSOPClassUID: CT,
    MediaStorageSOPInstanceUID: dataset.SOPInstanceUID,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.1',
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset({ ...meta }));
  dict.dict = DicomMetaDictionary.denaturalizeDataset({ ...dataset });
  return Buffer.from(dict.write());
}

let t: TestArchive;

beforeAll(async () => {
  t = await createTestArchive();
  const file = part10({
    SOPClassUID: CT,
    SOPInstanceUID: '2.25.7201',
    StudyInstanceUID: STUDY,
    SeriesInstanceUID: SERIES,
    Modality: 'CT',
    SpecificCharacterSet: 'ISO_IR 192',
    PatientName: 'Tanaka^Hanako=田中^花子=たなか^はなこ',
    PatientID: 'PID-T',
    PatientWeight: '72.50',
    PresentationLUTShape: 'IDENTITY',
    ProcedureCodeSequence: [
      { CodeValue: 'X1', CodingSchemeDesignator: 'L', CodeMeaning: 'say "},"00100010":{ ]}', EncapsulatedDocument: new Uint8Array([1, 2, 3, 4]).buffer },
    ],
    RequestAttributesSequence: [{ RequestedProcedureID: 'RP1', EncapsulatedDocument: new Uint8Array([5, 6]).buffer }],
  });
  const { body, contentType } = multipartBody([file, sample('CT_small.dcm')]);
  const res = await t.request.post('/dicom-web/studies').set('content-type', contentType).send(body);
  expect(res.status).toBe(200);
});

afterAll(async () => {
  await t?.close();
});

describe('stored attribute text', () => {
  it('is the jsonb value re-serialised: keys in jsonb order at every depth', async () => {
    const attrs: DicomJson = {
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'A^B', Ideographic: '甲^乙', Phonetic: 'こう^おつ' }] },
      '00101030': { vr: 'DS', Value: [72.5, 1e21, 0.0001] },
      '00081032': { vr: 'SQ', Value: [{ '00080104': { vr: 'LO', Value: ['x'] }, '00080100': { vr: 'SH', Value: ['y'] } }] },
    };
    const { rows } = await t.deps.db.raw('select ?::jsonb as j', [JSON.stringify(attrs)]);
    expect(attributesText(attrs)).toBe(JSON.stringify(rows[0].j));
  });

  it('splits into top-level attributes without being fooled by strings or sequences', () => {
    const attrs: DicomJson = {
      '00080005': { vr: 'CS', Value: ['ISO_IR 192'] },
      '00081032': { vr: 'SQ', Value: [{ '00100010': { vr: 'PN', Value: [{ Alphabetic: 'X' }] } }] },
      '00081030': { vr: 'LO', Value: ['a},"00100020":{"vr":"LO"} \\"'] },
      '00100020': { vr: 'LO' },
    };
    const text = attributesText(attrs);
    const parts = storedAttributes(text);
    expect(parts.filter((_, i) => i % 2 === 0)).toEqual(['00080005', '00081030', '00081032', '00100020']);
    for (let i = 0; i < parts.length; i += 2) expect(JSON.parse(parts[i + 1])).toEqual(attrs[parts[i]]);
  });
});

describe('QIDO results spliced from stored text', () => {
  it('keep PN component groups in the stored order and drop InlineBinary inside study and series sequences', async () => {
    const res = await t.request.get(`/dicom-web/series?PatientID=PID-T&includefield=00081032,00400275,PatientWeight`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('"00100010":{"vr":"PN","Value":[{"Phonetic":"たなか^はなこ","Alphabetic":"Tanaka^Hanako","Ideographic":"田中^花子"}]}');
    expect(res.text).not.toMatch(/BulkDataURI|InlineBinary/);
    const [r] = res.body as Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>[];
    expect(r['00081032'].Value![0]['00080104'].Value).toEqual(['say "},"00100010":{ ]}']);
    expect(r['00400275'].Value![0]['00401001'].Value).toEqual(['RP1']);
    expect(r['00101030']).toEqual({ vr: 'DS', Value: [72.5] });
  });

  it('list instance attributes in ascending tag order, all-digit tags such as 20500020 included (PS3.18 §F.2.2)', async () => {
    const res = await t.request.get('/dicom-web/instances?SOPInstanceUID=2.25.7201&includefield=all');
    expect(res.status).toBe(200);
    const tags = storedAttributes(res.text.slice(1, -1)).filter((_, i) => i % 2 === 0);
    expect(tags).toContain('20500020');
    expect(tags).toEqual([...tags].sort());
  });
});
