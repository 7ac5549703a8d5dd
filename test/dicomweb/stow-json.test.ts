import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryParser, createTestArchive, parseMultipart, type RelatedPart, relatedBody, type TestArchive } from '../helpers.js';
import { uid } from '../synthetic.js';

// STOW-RS of metadata and bulk data (PS3.18 §10.5.1.4): DICOM JSON plus bulk
// data parts by Content-Location become Part-10 instances in the transfer
// syntax of their pixel data, stored and retrieved like any other; a data
// set whose parts are missing, doubled or inconsistent fails alone.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

type Part = RelatedPart;
const body = (parts: Part[]) => relatedBody('application/dicom+json', parts);

async function stowJson(datasets: unknown, bulk: Part[], path = '/dicom-web/studies') {
  const meta: Part = { type: 'application/dicom+json', body: Buffer.from(JSON.stringify(datasets)) };
  const b = body([meta, ...bulk]);
  return a.request.post(path).set('Content-Type', b.contentType).set('Accept', 'application/dicom+json').send(b.body);
}

const SC = '1.2.840.10008.5.1.4.1.1.7';
type Ds = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

function image(over: Ds = {}): { ds: Ds; study: string; series: string; sop: string } {
  const [study, series, sop] = [uid(), uid(), uid()];
  const ds: Ds = {
    '00080016': { vr: 'UI', Value: [SC] },
    '00080018': { vr: 'UI', Value: [sop] },
    '00080060': { vr: 'CS', Value: ['OT'] },
    '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Müller^Jörg' }] },
    '00100020': { vr: 'LO', Value: ['JSON-1'] },
    '0020000D': { vr: 'UI', Value: [study] },
    '0020000E': { vr: 'UI', Value: [series] },
    '00200013': { vr: 'IS', Value: [7] },
    '00280002': { vr: 'US', Value: [1] },
    '00280004': { vr: 'CS', Value: ['MONOCHROME2'] },
    '00280010': { vr: 'US', Value: [4] },
    '00280011': { vr: 'US', Value: [4] },
    '00280100': { vr: 'US', Value: [8] },
    '00280101': { vr: 'US', Value: [8] },
    '00280102': { vr: 'US', Value: [7] },
    '00280103': { vr: 'US', Value: [0] },
    '7FE00010': { vr: 'OB', BulkDataURI: `http://client.example/bulk/${sop}` },
    ...over,
  };
  return { ds, study, series, sop };
}

const value = (row: Record<string, { Value?: unknown[] }>, tag: string) => row[tag]?.Value;

async function metadata(i: { study: string; series: string; sop: string }) {
  const res = await a.request.get(`/dicom-web/studies/${i.study}/series/${i.series}/instances/${i.sop}/metadata`).set('Accept', 'application/dicom+json');
  expect(res.status).toBe(200);
  return res.body[0];
}

async function frame(i: { study: string; series: string; sop: string }, accept: string): Promise<Buffer> {
  const res = await a.request
    .get(`/dicom-web/studies/${i.study}/series/${i.series}/instances/${i.sop}/frames/1`)
    .set('Accept', accept)
    .buffer(true)
    .parse(binaryParser);
  expect(res.status).toBe(200);
  return parseMultipart(res.body, res.headers['content-type'])[0].body;
}

describe('STOW-RS of DICOM JSON and bulk data', () => {
  it('stores native pixel data as Explicit VR Little Endian, attributes and pixels coming back as sent', async () => {
    const i = image();
    const pixels = Buffer.from(Array.from({ length: 16 }, (_, n) => n * 7));
    const res = await stowJson([i.ds], [{ type: 'application/octet-stream', location: i.ds['7FE00010'].BulkDataURI, body: pixels }]);
    expect(res.status).toBe(200);
    expect(value(res.body, '00081199')).toHaveLength(1);
    const m = await metadata(i);
    expect(value(m, '00100010')).toEqual([{ Alphabetic: 'Müller^Jörg' }]);
    expect(value(m, '00200013')).toEqual([7]);
    expect(value(m, '00280010')).toEqual([4]);
    expect(value(m, '00020010')).toEqual(['1.2.840.10008.1.2.1']);
    expect(await frame(i, 'multipart/related; type="application/octet-stream"')).toEqual(pixels);
    // The whole instance is a Part-10 file: preamble, DICM, and the File Meta group.
    const whole = await a.request
      .get(`/dicom-web/studies/${i.study}/series/${i.series}/instances/${i.sop}`)
      .set('Accept', 'multipart/related; type="application/dicom"')
      .buffer(true)
      .parse(binaryParser);
    const file = parseMultipart(whole.body, whole.headers['content-type'])[0].body;
    expect(file.toString('latin1', 128, 132)).toBe('DICM');
    expect(file.length % 2).toBe(0);
  });

  it('takes native YBR_FULL_422 pixel data at two samples a pixel', async () => {
    const i = image({ '00280002': { vr: 'US', Value: [3] }, '00280004': { vr: 'CS', Value: ['YBR_FULL_422'] }, '00280006': { vr: 'US', Value: [0] } });
    const pixels = Buffer.alloc(4 * 4 * 2, 0x80);
    const res = await stowJson([i.ds], [{ type: 'application/octet-stream', location: i.ds['7FE00010'].BulkDataURI, body: pixels }]);
    expect(res.status).toBe(200);
    expect(await frame(i, 'multipart/related; type="application/octet-stream"')).toEqual(pixels);
  });

  it('writes bulk data inside a sequence inline: an icon image by BulkDataURI', async () => {
    const icon = Buffer.from(Array.from({ length: 16 }, (_, n) => 255 - n));
    const i = image({
      '00880200': {
        vr: 'SQ',
        Value: [
          {
            '00280002': { vr: 'US', Value: [1] },
            '00280004': { vr: 'CS', Value: ['MONOCHROME2'] },
            '00280010': { vr: 'US', Value: [4] },
            '00280011': { vr: 'US', Value: [4] },
            '00280100': { vr: 'US', Value: [8] },
            '00280101': { vr: 'US', Value: [8] },
            '00280102': { vr: 'US', Value: [7] },
            '00280103': { vr: 'US', Value: [0] },
            '7FE00010': { vr: 'OB', BulkDataURI: 'icon' },
          },
        ] as unknown[],
      },
    });
    const pixels = Buffer.alloc(16, 3);
    const missing = image({ '00880200': { vr: 'SQ', Value: [{ '7FE00010': { vr: 'OB', BulkDataURI: 'nowhere' } }] as unknown[] } });
    const res = await stowJson(
      [i.ds, missing.ds],
      [
        { type: 'application/octet-stream', location: i.ds['7FE00010'].BulkDataURI, body: pixels },
        { type: 'application/octet-stream', location: missing.ds['7FE00010'].BulkDataURI, body: pixels },
        { type: 'application/octet-stream', location: 'icon', body: icon },
      ],
    );
    expect(res.status).toBe(202);
    const failed = value(res.body, '00081198') as Record<string, { Value?: unknown[] }>[];
    expect(failed.map((f) => [value(f, '00081155')?.[0], value(f, '00081197')?.[0]])).toEqual([[missing.sop, 0xa900]]);
    const item = (value(await metadata(i), '00880200') as Record<string, { InlineBinary?: string }>[])[0];
    expect(Buffer.from(item['7FE00010'].InlineBinary!, 'base64')).toEqual(icon);
    expect(await frame(i, 'multipart/related; type="application/octet-stream"')).toEqual(pixels);
  });

  it('stores a JPEG part as JPEG Baseline, its codestream the frame', async () => {
    const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 40, b: 90 } } })
      .jpeg()
      .toBuffer();
    const i = image({
      '00280002': { vr: 'US', Value: [3] },
      '00280004': { vr: 'CS', Value: ['YBR_FULL_422'] },
      '00280006': { vr: 'US', Value: [0] },
      '00280010': { vr: 'US', Value: [8] },
      '00280011': { vr: 'US', Value: [8] },
    });
    const res = await stowJson([i.ds], [{ type: 'image/jpeg', location: i.ds['7FE00010'].BulkDataURI, body: jpeg }]);
    expect(res.status).toBe(200);
    expect(value(await metadata(i), '00020010')).toEqual(['1.2.840.10008.1.2.4.50']);
    const got = await frame(i, 'multipart/related; type="image/jpeg"');
    // A fragment is padded to even length (PS3.5 §A.4).
    expect(got.subarray(0, jpeg.length)).toEqual(jpeg);
  });

  it('stores an encapsulated PDF, its MIME type taken from the part', async () => {
    // Larger than BULKDATA_THRESHOLD, so that metadata names it by BulkDataURI.
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(4000, 0x20), Buffer.from('\n%%EOF\n')]);
    const sop = uid();
    const [study, series] = [uid(), uid()];
    const ds: Ds = {
      '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.104.1'] },
      '00080018': { vr: 'UI', Value: [sop] },
      '00080060': { vr: 'CS', Value: ['DOC'] },
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Report^Patient' }] },
      '0020000D': { vr: 'UI', Value: [study] },
      '0020000E': { vr: 'UI', Value: [series] },
      '00420011': { vr: 'OB', BulkDataURI: 'report.pdf' },
    };
    const res = await stowJson([ds], [{ type: 'application/pdf', location: 'report.pdf', body: pdf }]);
    expect(res.status).toBe(200);
    const m = await metadata({ study, series, sop });
    expect(value(m, '00420012')).toEqual(['application/pdf']);
    const bulk = await a.request
      .get(`/dicom-web/studies/${study}/series/${series}/instances/${sop}/bulkdata/00420011`)
      .set('Accept', 'application/octet-stream')
      .buffer(true)
      .parse(binaryParser);
    expect(bulk.status).toBe(200);
    expect(bulk.body.subarray(0, pdf.length)).toEqual(pdf);
  });

  it('fails each data set whose parts are missing, doubled or inconsistent on its own, and stores the others', async () => {
    const good = image();
    const missing = image();
    const doubled = image();
    const short = image();
    const wrongType = image();
    const sixteen = Buffer.alloc(16, 1);
    const res = await stowJson(
      [good.ds, missing.ds, doubled.ds, short.ds, wrongType.ds],
      [
        { type: 'application/octet-stream', location: good.ds['7FE00010'].BulkDataURI, body: sixteen },
        { type: 'application/octet-stream', location: doubled.ds['7FE00010'].BulkDataURI, body: sixteen },
        { type: 'application/octet-stream', location: doubled.ds['7FE00010'].BulkDataURI, body: sixteen },
        { type: 'application/octet-stream', location: short.ds['7FE00010'].BulkDataURI, body: Buffer.alloc(10) },
        { type: 'application/pdf', location: wrongType.ds['7FE00010'].BulkDataURI, body: sixteen },
      ],
    );
    expect(res.status).toBe(202);
    const failed = value(res.body, '00081198') as Record<string, { Value?: unknown[] }>[];
    const reasons = Object.fromEntries(failed.map((f) => [value(f, '00081155')?.[0], value(f, '00081197')?.[0]]));
    expect(reasons).toEqual({ [missing.sop]: 0xa900, [doubled.sop]: 0xc000, [short.sop]: 0xa900, [wrongType.sop]: 0xa900 });
    const stored = value(res.body, '00081199') as Record<string, { Value?: unknown[] }>[];
    expect(stored.map((s) => value(s, '00081155')?.[0])).toEqual([good.sop]);
  });

  it('checks the data set against the target study of POST /studies/{study}', async () => {
    const i = image();
    const res = await stowJson(
      [i.ds],
      [{ type: 'application/octet-stream', location: i.ds['7FE00010'].BulkDataURI, body: Buffer.alloc(16) }],
      `/dicom-web/studies/${uid()}`,
    );
    expect(res.status).toBe(409);
    expect(value((value(res.body, '00081198') as Record<string, { Value?: unknown[] }>[])[0], '00081197')).toEqual([0xc409]);
  });

  it('answers 400 with a JSON body for metadata that is not DICOM JSON', async () => {
    const b = body([{ type: 'application/dicom+json', body: Buffer.from('{"00100010": ') }]);
    const res = await a.request.post('/dicom-web/studies').set('Content-Type', b.contentType).send(b.body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/not JSON/);
    const none = body([{ type: 'application/octet-stream', location: 'x', body: Buffer.alloc(2) }]);
    const res2 = await a.request.post('/dicom-web/studies').set('Content-Type', none.contentType).send(none.body);
    expect(res2.status).toBe(400);
    expect(res2.body.message).toMatch(/metadata part/);
  });
});
