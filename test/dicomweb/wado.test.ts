import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryParser, createTestArchive, multipartBody, parseMultipart, sample, type TestArchive } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';

let a: TestArchive;
const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
const RLE = { bytes: sample('SC_rgb_rle_2frame.dcm') };
let rle: { study: string; series: string; instance: string };
const multi = syntheticInstance({ frames: 3 });
const second = syntheticInstance({ studyUid: multi.studyUid, seriesUid: multi.seriesUid });
/** Native YBR_FULL_422: two stored samples a pixel though Samples per Pixel is 3 (PS3.3 §C.7.6.3.1.2). */
const ybr422 = syntheticInstance({
  frames: 3,
  SamplesPerPixel: 3,
  PhotometricInterpretation: 'YBR_FULL_422',
  PlanarConfiguration: 0,
});

beforeAll(async () => {
  a = await createTestArchive();
  const m = multipartBody([sample('CT_small.dcm'), RLE.bytes, multi.bytes, second.bytes, sample('JPEG-lossy.dcm'), ybr422.bytes]);
  const res = await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
  expect(res.status).toBe(200);
  const ref = res.body['00081199'].Value[1]['00081190'].Value[0] as string;
  const [, study, series, instance] = /studies\/([\d.]+)\/series\/([\d.]+)\/instances\/([\d.]+)/.exec(ref)!;
  rle = { study, series, instance };
});
afterAll(async () => {
  await a?.close();
});

const get = (url: string, accept?: string) => {
  const r = a.request.get(url).buffer(true).parse(binaryParser);
  return accept ? r.set('Accept', accept) : r;
};
const ctUrl = `/dicom-web/studies/${CT.study}/series/${CT.series}/instances/${CT.instance}`;
/** The Pixel Data value of CT_small.dcm: after the (7FE0,0010) OW element header of 12 bytes. */
function ctPixels(): Buffer {
  const file = sample('CT_small.dcm');
  const at = file.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57]));
  return file.subarray(at + 12, at + 12 + file.readUInt32LE(at + 8));
}

describe('WADO-RS retrieve', () => {
  it('returns an instance byte-identical to what was stored, as multipart/related application/dicom', async () => {
    const res = await get(ctUrl, 'multipart/related; type="application/dicom"');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    const parts = parseMultipart(res.body, res.headers['content-type']);
    expect(parts).toHaveLength(1);
    expect(parts[0].headers['content-type']).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
    expect(Buffer.compare(parts[0].body, sample('CT_small.dcm'))).toBe(0);
    expect(Number(res.headers['content-length'])).toBe(res.body.length);
  });

  it('returns every instance of a series and of a study', async () => {
    const series = await get(
      `/dicom-web/studies/${multi.studyUid}/series/${multi.seriesUid}`,
      'multipart/related; type="application/dicom"; transfer-syntax=*',
    );
    const parts = parseMultipart(series.body, series.headers['content-type']);
    expect(parts.map((p) => p.body.length).sort()).toEqual([multi.bytes.length, second.bytes.length].sort());
    const study = await get(`/dicom-web/studies/${multi.studyUid}`);
    expect(parseMultipart(study.body, study.headers['content-type'])).toHaveLength(2);
  });

  it('serves the stored transfer syntax when asked for it by UID', async () => {
    const res = await get(`/dicom-web/studies/${rle.study}`, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.5');
    expect(res.status).toBe(200);
  });

  it('answers 406 for a transfer syntax Cairn cannot make of the instance (JPEG Baseline of 16-bit pixels)', async () => {
    const res = await get(ctUrl, 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50');
    expect(res.status).toBe(406);
    expect(JSON.parse(res.body.toString()).error).toBe('NotAcceptable');
  });

  it('answers 406 for an unsupported media type', async () => {
    expect((await get(ctUrl, 'image/x-foo')).status).toBe(406);
  });

  it('answers 404 with a JSON body for an unknown study', async () => {
    const res = await get(`/dicom-web/studies/${uid()}`);
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body.toString()).error).toBe('StudyNotFound');
  });

  it('answers 400 for a malformed UID', async () => {
    const res = await get('/dicom-web/studies/abc');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString()).message).toContain('abc');
  });
});

describe('WADO-RS metadata', () => {
  it('returns instance metadata with pixel data as a BulkDataURI', async () => {
    const res = await a.request.get(`${ctUrl}/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/dicom\+json/);
    expect(res.body).toHaveLength(1);
    const m = res.body[0];
    expect(m['00100010'].Value[0].Alphabetic).toBe('CompressedSamples^CT1');
    expect(m['00080005'].Value).toEqual(['ISO_IR 100']);
    expect(m['7FE00010'].BulkDataURI).toMatch(
      new RegExp(`^http://127\\.0\\.0\\.1:\\d+/dicom-web/studies/${CT.study}/series/${CT.series}/instances/${CT.instance}/bulkdata/7FE00010$`),
    );
    expect(m['7FE00010'].InlineBinary).toBeUndefined();
  });

  it('returns series and study metadata for every instance', async () => {
    const s = await a.request.get(`/dicom-web/studies/${multi.studyUid}/series/${multi.seriesUid}/metadata`);
    expect(s.body.map((m: Record<string, { Value: string[] }>) => m['00080018'].Value[0]).sort()).toEqual([multi.sopInstanceUid, second.sopInstanceUid].sort());
    const st = await a.request.get(`/dicom-web/studies/${multi.studyUid}/metadata`);
    expect(st.body).toHaveLength(2);
  });

  it('decodes the Japanese ISO 2022 name of chrJapMulti.dcm', async () => {
    const m = multipartBody([sample('chrJapMulti.dcm')]);
    const stored = await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    const url = stored.body['00081199'].Value[0]['00081190'].Value[0].replace(/^http:\/\/[^/]+/, '');
    const res = await a.request.get(`${url}/metadata`);
    expect(res.body[0]['00100010'].Value[0]).toEqual({ Alphabetic: 'やまだ^たろう' });
    // PS3.18 Annex F.2: Specific Character Set keeps the source's values (the JSON itself is UTF-8).
    expect(res.body[0]['00080005'].Value).toEqual([null, 'ISO 2022 IR 87']);
  });

  it('answers 404 for metadata of an unknown series', async () => {
    expect((await a.request.get(`/dicom-web/studies/${CT.study}/series/${uid()}/metadata`)).status).toBe(404);
  });
});

describe('WADO-RS bulk data', () => {
  it('resolves the BulkDataURI of native pixel data to the stored bytes', async () => {
    const res = await get(`${ctUrl}/bulkdata/7FE00010`, 'application/octet-stream');
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(128 * 128 * 2);
    expect(Buffer.compare(res.body, ctPixels())).toBe(0);
  });

  it('serves a byte range with 206 and Content-Range', async () => {
    const res = await get(`${ctUrl}/bulkdata/7FE00010`).set('Range', 'bytes=10-19');
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes 10-19/${128 * 128 * 2}`);
    expect(Buffer.compare(res.body, ctPixels().subarray(10, 20))).toBe(0);
  });

  it('answers 416 for a range outside the value', async () => {
    expect((await get(`${ctUrl}/bulkdata/7FE00010`).set('Range', 'bytes=99999999-')).status).toBe(416);
  });

  it('sends multipart/related by default', async () => {
    const res = await get(`${ctUrl}/bulkdata/7FE00010`, 'multipart/related; type="application/octet-stream"');
    expect(parseMultipart(res.body, res.headers['content-type'])[0].body.length).toBe(128 * 128 * 2);
  });
});

describe('WADO-RS frames', () => {
  it('returns the exact bytes of native frames in the order asked', async () => {
    const url = `/dicom-web/studies/${multi.studyUid}/series/${multi.seriesUid}/instances/${multi.sopInstanceUid}/frames/3,1`;
    const res = await get(url, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
    expect(res.status).toBe(200);
    const parts = parseMultipart(res.body, res.headers['content-type']);
    expect(parts[0].headers['content-type']).toBe('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
    expect(parts.map((p) => p.body)).toEqual([multi.frameBytes[2], multi.frameBytes[0]]);
  });

  it('locates native YBR_FULL_422 frames by their two stored samples a pixel', async () => {
    const url = `/dicom-web/studies/${ybr422.studyUid}/series/${ybr422.seriesUid}/instances/${ybr422.sopInstanceUid}/frames/2,3`;
    const res = await get(url, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
    expect(res.status).toBe(200);
    const parts = parseMultipart(res.body, res.headers['content-type']);
    expect(parts.map((p) => p.body)).toEqual([ybr422.frameBytes[1], ybr422.frameBytes[2]]);
    expect(parts[0].body.length).toBe(4 * 4 * 2);
    // And the last frame decodes: each stored frame is filled with its number (Y = Cb = Cr = 3).
    const png = await get(`${url.replace('/frames/2,3', '/frames/3')}/rendered`, 'image/png');
    expect(png.status).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
  });

  it('returns frame 2 of the RLE sample as stored under image/dicom-rle', async () => {
    const res = await get(
      `/dicom-web/studies/${rle.study}/series/${rle.series}/instances/${rle.instance}/frames/2`,
      'multipart/related; type="image/dicom-rle"',
    );
    expect(res.status).toBe(200);
    const part = parseMultipart(res.body, res.headers['content-type'])[0];
    expect(part.headers['content-type']).toBe('image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5');
    expect(part.body.length).toBe(664);
    // An RLE segment header (PS3.5 §G.3.1) starts with the number of segments: 3 for RGB.
    expect(part.body.readUInt32LE(0)).toBe(3);
  });

  it('sends compressed frames as stored for application/octet-stream with transfer-syntax=*', async () => {
    const res = await get(
      `/dicom-web/studies/${rle.study}/series/${rle.series}/instances/${rle.instance}/frames/1`,
      'multipart/related; type=application/octet-stream; transfer-syntax=*',
    );
    expect(res.status).toBe(200);
    expect(parseMultipart(res.body, res.headers['content-type'])[0].headers['content-type']).toBe(
      'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.5',
    );
  });

  it('decodes compressed frames asked for as uncompressed (PS3.18 Table 8.7.3-5)', async () => {
    const res = await get(
      `/dicom-web/studies/${rle.study}/series/${rle.series}/instances/${rle.instance}/frames/1`,
      'multipart/related; type="application/octet-stream"',
    );
    expect(res.status).toBe(200);
    const [part] = parseMultipart(res.body, res.headers['content-type']);
    expect(part.headers['content-type']).toBe('application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1');
    // 100 × 100 RGB, 8 bits a sample.
    expect(part.body.length).toBe(100 * 100 * 3);
  });

  it('answers 404 for a frame beyond the last', async () => {
    expect((await get(`${ctUrl}/frames/2`)).status).toBe(404);
  });

  it('answers 400 for a malformed frame list', async () => {
    expect((await get(`${ctUrl}/frames/0,x`)).status).toBe(400);
  });
});

describe('DELETE', () => {
  it('removes an instance, its blob, and the series and study left empty', async () => {
    const inst = syntheticInstance();
    const m = multipartBody([inst.bytes]);
    await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    const row = await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid }).first('blob_key');
    const res = await a.request.delete(`/dicom-web/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopInstanceUid}`);
    expect(res.status).toBe(204);
    expect((await get(`/dicom-web/studies/${inst.studyUid}`)).status).toBe(404);
    expect(await a.deps.db('studies').where({ study_uid: inst.studyUid })).toHaveLength(0);
    await expect(a.deps.blobs.get(row.blob_key)).rejects.toThrow();
  });

  it('removes a whole study', async () => {
    const one = syntheticInstance();
    const two = syntheticInstance({ studyUid: one.studyUid });
    const m = multipartBody([one.bytes, two.bytes]);
    await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    expect((await a.request.delete(`/dicom-web/studies/${one.studyUid}`)).status).toBe(204);
    expect(await a.deps.db('instances').where({ study_uid: one.studyUid })).toHaveLength(0);
  });

  it('answers 404 for an unknown study', async () => {
    expect((await a.request.delete(`/dicom-web/studies/${uid()}`)).status).toBe(404);
  });
});

describe('WADO-RS metadata order', () => {
  it('lists attributes in ascending tag order, integer-like tags included (PS3.18 §F.2.2)', async () => {
    const inst = syntheticInstance({ PresentationLUTShape: 'IDENTITY', ImageComments: 'x' });
    const m = multipartBody([inst.bytes]);
    await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    const res = await a.request
      .get(`/dicom-web/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopInstanceUid}/metadata`)
      .buffer(true)
      .parse(binaryParser);
    const keys = [...res.body.toString().matchAll(/"([0-9A-F]{8})":\{"vr"/g)].map((x) => x[1]);
    expect(keys).toContain('20500020');
    expect(keys).toEqual([...keys].sort());
  });
});
