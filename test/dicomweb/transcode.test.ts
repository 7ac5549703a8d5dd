import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryParser, createTestArchive, multipartBody, parseMultipart, sample, type TestArchive } from '../helpers.js';

// Transfer syntaxes over real HTTP: what a client gets for each stored
// syntax with the default Accept (PS3.18 §8.7.3: Explicit VR Little Endian
// for native and lossless data, the stored syntax for lossy), with
// `transfer-syntax=*` (as stored), with another syntax named (transcoded or
// 406), and Deflated Explicit VR Little Endian at STOW. The re-encoded files
// are read back with dcmjs and with DCMTK's dcmdump.

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const JPEG_EXTENDED = '1.2.840.10008.1.2.4.51';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const RLE = '1.2.840.10008.1.2.5';
const J2K_LOSSY = '1.2.840.10008.1.2.4.91';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Files re-encoded by DCMTK's dcmconv from the shared samples (see fixtures/README.md). */
const fixture = (name: string) => fs.readFileSync(path.join(here, 'fixtures', name));

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
const ctUrl = `/dicom-web/studies/${CT.study}/series/${CT.series}/instances/${CT.instance}`;

type Dict = Record<string, { vr: string; Value: unknown[] }>;
function read(file: Buffer): { meta: Dict; dict: Dict } {
  const ab = file.buffer.slice(file.byteOffset, file.byteOffset + file.length);
  const m = dcmjs.data.DicomMessage.readFile(ab);
  return { meta: m.meta as Dict, dict: m.dict as Dict };
}
/**
 * A data set as JSON for comparison, without what a re-encoding may drop:
 * group lengths (retired, PS3.5 §7.2) and trailing padding (FFFC,FFFC).
 */
function comparable(dict: Dict): string {
  const keep = Object.keys(dict)
    .filter((t) => !t.endsWith('0000') && t !== 'FFFCFFFC')
    .sort();
  return JSON.stringify(keep.map((t) => [t, dict[t]]));
}
const pixelsOf = (file: Buffer) => Buffer.from(read(file).dict['7FE00010'].Value[0] as ArrayBuffer);
const tsOf = (file: Buffer) => read(file).meta['00020010'].Value[0];

/** DCMTK's reading of a file: dcmdump fails on a file it cannot parse. */
function dcmdump(file: Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-dcmdump-'));
  try {
    fs.writeFileSync(path.join(dir, 'f.dcm'), file);
    return execFileSync('dcmdump', ['-q', '+E', path.join(dir, 'f.dcm')], { encoding: 'latin1' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function store(a: TestArchive, files: Buffer[]): Promise<string[]> {
  const m = multipartBody(files);
  const res = await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
  expect(res.status).toBe(200);
  return res.body['00081199'].Value.map((v: Record<string, { Value: string[] }>) => v['00081190'].Value[0].replace(/^http:\/\/[^/]+/, ''));
}

function getter(a: () => TestArchive) {
  return (url: string, accept?: string) => {
    const r = a().request.get(url).buffer(true).parse(binaryParser);
    return accept ? r.set('Accept', accept) : r;
  };
}

/** The one instance of a multipart/related response. */
function onlyPart(res: { body: Buffer; headers: Record<string, string> }) {
  const parts = parseMultipart(res.body, res.headers['content-type']);
  expect(parts).toHaveLength(1);
  return parts[0];
}

describe('default transfer syntax of whole instances', () => {
  let a: TestArchive;
  const get = getter(() => a);
  let urls: Record<string, string>;

  beforeAll(async () => {
    a = await createTestArchive();
    const names = ['MR_implicit', 'CT_big_endian', 'SR_implicit', 'JPEG_lossy', 'RGB_rle'];
    const got = await store(a, [
      sample('MR_small_implicit.dcm'),
      fixture('CT_small_big_endian.dcm'),
      fixture('SR_implicit.dcm'),
      sample('JPEG-lossy.dcm'),
      sample('SC_rgb_rle_2frame.dcm'),
    ]);
    urls = Object.fromEntries(names.map((n, i) => [n, got[i]]));
  });
  afterAll(async () => {
    await a?.close();
  });

  it('sends an Implicit VR instance as Explicit VR Little Endian for a bare application/dicom, pixels unchanged', async () => {
    const res = await get(urls.MR_implicit, 'application/dicom');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expect(Number(res.headers['content-length'])).toBe(res.body.length);
    expect(tsOf(res.body)).toBe(EXPLICIT_LE);
    expect(pixelsOf(res.body)).toEqual(pixelsOf(sample('MR_small.dcm')));
    // The same data set as the Explicit VR original, element for element (the resolved VRs included).
    expect(comparable(read(res.body).dict)).toEqual(comparable(read(sample('MR_small.dcm')).dict));
    expect(dcmdump(res.body)).toContain('(0002,0010) UI =LittleEndianExplicit');
  });

  it('does the same inside multipart/related; type="application/dicom" without a transfer syntax', async () => {
    const res = await get(urls.MR_implicit, 'multipart/related; type="application/dicom"');
    const part = onlyPart(res);
    expect(part.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expect(tsOf(part.body)).toBe(EXPLICIT_LE);
    expect(Number(res.headers['content-length'])).toBe(res.body.length);
  });

  it('sends a Big Endian instance as Explicit VR Little Endian with its pixel values swapped into place', async () => {
    const res = await get(urls.CT_big_endian, 'application/dicom');
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expect(pixelsOf(res.body)).toEqual(pixelsOf(sample('CT_small.dcm')));
    // Every value (US, SS, SL, UL, FD… private ones too) reads as in the little-endian original.
    expect(comparable(read(res.body).dict)).toEqual(comparable(read(sample('CT_small.dcm')).dict));
    dcmdump(res.body);
  });

  it('re-encodes the sequences of an Implicit VR structured report with defined lengths that DCMTK and dcmjs read', async () => {
    const res = await get(urls.SR_implicit, 'application/dicom');
    const got = read(res.body).dict;
    const want = read(sample('test-SR.dcm')).dict;
    // Content Sequence, nested several levels deep, as in the Explicit VR original.
    expect(JSON.stringify(got['0040A730'])).toBe(JSON.stringify(want['0040A730']));
    expect(dcmdump(res.body)).not.toMatch(/undefined length/i);
  });

  it('keeps a lossy instance in its stored syntax', async () => {
    const res = await get(urls.JPEG_lossy, 'application/dicom');
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${JPEG_EXTENDED}`);
    expect(res.body).toEqual(sample('JPEG-lossy.dcm'));
  });

  it('sends an instance as stored with transfer-syntax=*', async () => {
    const res = await get(urls.MR_implicit, 'multipart/related; type="application/dicom"; transfer-syntax=*');
    const part = onlyPart(res);
    expect(part.headers['content-type']).toBe(`application/dicom; transfer-syntax=${IMPLICIT_LE}`);
    expect(part.body).toEqual(sample('MR_small_implicit.dcm'));
  });

  it('transcodes when Explicit VR Little Endian is named', async () => {
    const res = await get(urls.CT_big_endian, `application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expect(pixelsOf(res.body)).toEqual(pixelsOf(sample('CT_small.dcm')));
  });

  it('picks by q among several multipart options, skipping what cannot be made', async () => {
    const accept = [
      `multipart/related; type="application/dicom"; transfer-syntax=${IMPLICIT_LE}; q=0.9`,
      'multipart/related; type="application/dicom"; transfer-syntax=*; q=0.3',
      `multipart/related; type="application/dicom"; transfer-syntax=${EXPLICIT_LE}; q=0.6`,
    ].join(', ');
    const part = onlyPart(await get(urls.CT_big_endian, accept));
    expect(part.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    const lower = onlyPart(await get(urls.CT_big_endian, accept.replace('q=0.3', 'q=0.7')));
    expect(lower.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_BE}`);
  });

  it('answers 406 with a JSON body listing what can be sent', async () => {
    const res = await get(urls.MR_implicit, `application/dicom; transfer-syntax=${J2K_LOSSY}`);
    expect(res.status).toBe(406);
    const body = JSON.parse(res.body.toString());
    expect(body.error).toBe('NotAcceptable');
    // The stored syntax and Explicit VR LE first, then what the codecs (when present) can encode.
    expect(body.acceptable.slice(0, 2)).toEqual([`application/dicom; transfer-syntax=${IMPLICIT_LE}`, `application/dicom; transfer-syntax=${EXPLICIT_LE}`]);
    expect(body.acceptable).not.toContain(`application/dicom; transfer-syntax=${J2K_LOSSY}`);
  });

  it('sends every instance of a study, each in its own default syntax', async () => {
    const study = urls.MR_implicit.replace(/\/series\/.*$/, '');
    const res = await get(study, 'multipart/related; type="application/dicom"');
    expect(res.status).toBe(200);
    const parts = parseMultipart(res.body, res.headers['content-type']);
    expect(parts.length).toBeGreaterThan(0);
    for (const p of parts) expect(p.headers['content-type']).toBe(`application/dicom; transfer-syntax=${tsOf(p.body)}`);
    expect(tsOf(parts[0].body)).toBe(EXPLICIT_LE);
  });
});

describe('frames and pixel bulk data as native pixels', () => {
  let a: TestArchive;
  const get = getter(() => a);
  let be: string;

  beforeAll(async () => {
    a = await createTestArchive();
    [be] = await store(a, [fixture('CT_small_big_endian.dcm')]);
  });
  afterAll(async () => {
    await a?.close();
  });

  it('sends big-endian frames as little-endian pixels for application/octet-stream', async () => {
    const res = await get(`${be}/frames/1`, 'multipart/related; type="application/octet-stream"');
    const part = onlyPart(res);
    expect(part.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT_LE}`);
    expect(part.body).toEqual(pixelsOf(sample('CT_small.dcm')));
  });

  it('sends big-endian frames as stored with transfer-syntax=*', async () => {
    const part = onlyPart(await get(`${be}/frames/1`, 'multipart/related; type="application/octet-stream"; transfer-syntax=*'));
    expect(part.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT_BE}`);
    expect(part.body).toEqual(Buffer.from(pixelsOf(sample('CT_small.dcm'))).swap16());
  });

  it('sends big-endian pixel bulk data as one little-endian value', async () => {
    const res = await get(`${be}/bulkdata/7FE00010`, 'application/octet-stream');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT_LE}`);
    expect(res.body).toEqual(pixelsOf(sample('CT_small.dcm')));
  });
});

describe('Deflated Explicit VR Little Endian', () => {
  let a: TestArchive;
  const get = getter(() => a);
  let url: string;
  const deflated = fixture('CT_small_deflated.dcm');

  beforeAll(async () => {
    a = await createTestArchive();
    [url] = await store(a, [deflated]);
  });
  afterAll(async () => {
    await a?.close();
  });

  it('is stored at STOW and indexed from its inflated data set', async () => {
    expect(url).toBe(ctUrl);
    const meta = (await a.request.get(`${url}/metadata`)).body[0];
    expect(meta['00100010'].Value[0].Alphabetic).toBe('CompressedSamples^CT1');
    expect(meta['00020010'].Value).toEqual([DEFLATED]);
    const found = await a.request.get(`/dicom-web/studies?StudyInstanceUID=${CT.study}`);
    expect(found.body).toHaveLength(1);
  });

  it('is sent exactly as stored with transfer-syntax=*', async () => {
    const part = onlyPart(await get(url, 'multipart/related; type="application/dicom"; transfer-syntax=*'));
    expect(part.headers['content-type']).toBe(`application/dicom; transfer-syntax=${DEFLATED}`);
    expect(part.body).toEqual(deflated);
  });

  it('is sent inflated as Explicit VR Little Endian by default', async () => {
    const res = await get(url, 'application/dicom');
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expect(pixelsOf(res.body)).toEqual(pixelsOf(sample('CT_small.dcm')));
    dcmdump(res.body);
  });

  it('serves its frames and pixel bulk data from the inflated data set', async () => {
    const want = pixelsOf(sample('CT_small.dcm'));
    const frame = onlyPart(await get(`${url}/frames/1`, 'multipart/related; type="application/octet-stream"'));
    expect(frame.body).toEqual(want);
    const bulk = await get(`${url}/bulkdata/7FE00010`, 'application/octet-stream').set('Range', 'bytes=100-199');
    expect(bulk.status).toBe(206);
    expect(bulk.body).toEqual(want.subarray(100, 200));
  });

  it('fails alone when its data set does not inflate, the other instances of the request stored', async () => {
    const broken = Buffer.from(deflated);
    broken.fill(0xff, broken.length - 2000, broken.length - 1000);
    const other = sample('MR_small.dcm');
    const m = multipartBody([broken.subarray(0, broken.length - 1500), other]);
    const res = await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    expect(res.status).toBe(202);
    expect(res.body['00081198'].Value).toHaveLength(1);
    expect(res.body['00081199'].Value).toHaveLength(1);
  });
});

describe('access on the converting paths', () => {
  let a: TestArchive;
  const get = getter(() => a);
  let url: string;

  beforeAll(async () => {
    a = await createTestArchive();
    [url] = await store(a, [fixture('CT_small_big_endian.dcm')]);
    expect((await a.request.put(`/api/studies/${CT.study}/labels`).send({ labels: ['vip'] })).status).toBe(200);
  });
  afterAll(async () => {
    await a?.close();
  });

  it.each([
    ['a transcoded instance', '', 'application/dicom'],
    ['an instance in a named syntax', '', `application/dicom; transfer-syntax=${EXPLICIT_LE}`],
    ['frames made little endian', '/frames/1', 'multipart/related; type="application/octet-stream"'],
    ['pixel bulk data made little endian', '/bulkdata/7FE00010', 'application/octet-stream'],
    ['frames encoded', '/frames/1', `multipart/related; type="image/dicom-rle"; transfer-syntax=${RLE}`],
    ['an instance encoded', '', `application/dicom; transfer-syntax=${JPEG_BASELINE}`],
  ])('answers 404 for %s of a hidden study, as for a missing one', async (_, suffix, accept) => {
    const res = await get(`${url}${suffix}`, accept);
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body.toString()).error).toMatch(/NotFound$/);
  });
});

/** A file decompressed by a DCMTK tool (dcmdrle, dcmdjpeg): a decoder that is not Cairn's. */
function decompressed(tool: string, file: Buffer): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-decompress-'));
  try {
    fs.writeFileSync(path.join(dir, 'in.dcm'), file);
    execFileSync(tool, [path.join(dir, 'in.dcm'), path.join(dir, 'out.dcm')]);
    return fs.readFileSync(path.join(dir, 'out.dcm'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const dcmdrle = (file: Buffer) => decompressed('dcmdrle', file);
const dcmdjpeg = (file: Buffer) => decompressed('dcmdjpeg', file);

describe('decoding and encoding through the codecs', () => {
  let a: TestArchive;
  const get = getter(() => a);
  let urls: Record<string, string>;
  const rgbFrames = pixelsOf(dcmdrle(sample('SC_rgb_rle_2frame.dcm')));

  beforeAll(async () => {
    a = await createTestArchive();
    const names = ['CT_rle', 'RGB_rle', 'MR', 'German'];
    const got = await store(a, [fixture('CT_small_rle.dcm'), sample('SC_rgb_rle_2frame.dcm'), sample('MR_small.dcm'), sample('chrGerm.dcm')]);
    urls = Object.fromEntries(names.map((n, i) => [n, got[i]]));
  });
  afterAll(async () => {
    await a?.close();
  });

  it('sends an RLE instance as Explicit VR Little Endian by default, decoded to the original pixels', async () => {
    const res = await get(urls.CT_rle, 'application/dicom');
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    expect(pixelsOf(res.body)).toEqual(pixelsOf(sample('CT_small.dcm')));
    expect(read(res.body).dict['7FE00010'].vr).toBe('OW');
    dcmdump(res.body);
  });

  it('decodes every frame of a multi-frame colour instance as DCMTK does', async () => {
    const res = await get(urls.RGB_rle, 'multipart/related; type="application/dicom"');
    const part = onlyPart(res);
    expect(tsOf(part.body)).toBe(EXPLICIT_LE);
    expect(pixelsOf(part.body)).toEqual(rgbFrames);
    expect(read(part.body).dict['7FE00010'].vr).toBe('OB');
  });

  it('sends compressed frames as native pixels for application/octet-stream', async () => {
    const res = await get(`${urls.RGB_rle}/frames/2`, 'multipart/related; type="application/octet-stream"');
    const part = onlyPart(res);
    expect(part.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT_LE}`);
    expect(part.body).toEqual(rgbFrames.subarray(rgbFrames.length / 2));
  });

  it('still sends the compressed frame as stored for transfer-syntax=* (as OHIF asks) and for its own media type', async () => {
    const star = onlyPart(await get(`${urls.RGB_rle}/frames/1`, 'multipart/related; type="application/octet-stream"; transfer-syntax=*'));
    expect(star.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${RLE}`);
    const own = onlyPart(await get(`${urls.RGB_rle}/frames/1`, 'multipart/related; type="image/dicom-rle"'));
    expect(own.body).toEqual(star.body);
    expect(star.body.readUInt32LE(0)).toBe(3);
  });

  it('sends decoded pixel bulk data as one native value', async () => {
    const res = await get(`${urls.RGB_rle}/bulkdata/7FE00010`, 'application/octet-stream');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT_LE}`);
    expect(res.body).toEqual(rgbFrames);
  });

  it('encodes an instance in a named compressed syntax that DCMTK decodes back to the original', async () => {
    const res = await get(urls.MR, `application/dicom; transfer-syntax=${RLE}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${RLE}`);
    expect(tsOf(res.body)).toBe(RLE);
    expect(pixelsOf(dcmdrle(res.body))).toEqual(pixelsOf(sample('MR_small.dcm')));
    // Lossless: no Lossy Image Compression is claimed.
    expect(read(res.body).dict['00282110']).toBeUndefined();
  });

  it('marks an instance encoded lossily as such, with ratio and method, and DCMTK decodes it close to the original', async () => {
    const res = await get(urls.German, `application/dicom; transfer-syntax=${JPEG_BASELINE}`);
    expect(res.status).toBe(200);
    const dict = read(res.body).dict;
    expect(read(res.body).meta['00020010'].Value).toEqual([JPEG_BASELINE]);
    // PS3.3 §C.7.6.1.1.5
    expect(dict['00282110'].Value).toEqual(['01']);
    expect(Number(dict['00282112'].Value[0])).toBeGreaterThan(0);
    expect(dict['00282114'].Value).toEqual(['ISO_10918_1']);
    const decoded = pixelsOf(dcmdjpeg(res.body));
    const original = pixelsOf(sample('chrGerm.dcm'));
    expect(decoded.length).toBe(original.length);
    const worst = Math.max(...original.map((v, i) => Math.abs(v - decoded[i])));
    expect(worst).toBeLessThan(32);
  });

  it('encodes frames under the media type asked for', async () => {
    const res = await get(`${urls.MR}/frames/1`, 'multipart/related; type="image/dicom-rle"');
    const part = onlyPart(res);
    expect(part.headers['content-type']).toBe(`image/dicom-rle; transfer-syntax=${RLE}`);
    const module = { rows: 64, columns: 64, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, highBit: 15, pixelRepresentation: 1 as const };
    const decoded = await a.deps.pixels.decode(RLE, part.body, {
      ...module,
      photometricInterpretation: 'MONOCHROME2',
      planarConfiguration: 0,
      numberOfFrames: 1,
    });
    expect(decoded.pixels).toEqual(pixelsOf(sample('MR_small.dcm')));
  });

  it('answers 406 with the list when the codecs cannot make the syntax named for these pixels', async () => {
    // JPEG Baseline is 8-bit only (PS3.5 §A.4.1); MR_small is 16-bit.
    const res = await get(`${urls.MR}/frames/1`, `multipart/related; type="image/jpeg"; transfer-syntax=${JPEG_BASELINE}`);
    expect(res.status).toBe(406);
    const list = JSON.parse(res.body.toString()).acceptable;
    expect(list).toContain(`application/octet-stream; transfer-syntax=${EXPLICIT_LE}`);
    expect(list).toContain(`image/dicom-rle; transfer-syntax=${RLE}`);
    expect(list).not.toContain(`image/jpeg; transfer-syntax=${JPEG_BASELINE}`);
  });
});

describe('every sample with the default Accept', () => {
  let a: TestArchive;
  const get = getter(() => a);
  const files = ['CT_small.dcm', 'MR_small_implicit.dcm', 'JPEG2000.dcm', 'JPEG-lossy.dcm', 'SC_rgb_jpeg.dcm', 'SC_rgb_rle_2frame.dcm'];
  let urls: string[];

  beforeAll(async () => {
    a = await createTestArchive();
    urls = await store(
      a,
      files.map((f) => sample(f)),
    );
  });
  afterAll(async () => {
    await a?.close();
  });

  it.each([
    ['CT_small.dcm', EXPLICIT_LE, true],
    ['MR_small_implicit.dcm', EXPLICIT_LE, false],
    // JPEG 2000 (…4.91) may be lossy: it stays as it is.
    ['JPEG2000.dcm', '1.2.840.10008.1.2.4.91', true],
    ['JPEG-lossy.dcm', JPEG_EXTENDED, true],
    ['SC_rgb_jpeg.dcm', JPEG_BASELINE, true],
    ['SC_rgb_rle_2frame.dcm', EXPLICIT_LE, false],
  ])('%s comes back as %s', async (name, ts, asStored) => {
    const res = await get(urls[files.indexOf(name)], 'application/dicom');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${ts}`);
    if (asStored) expect(res.body).toEqual(sample(name));
    else expect(tsOf(res.body)).toBe(ts);
  });

  it('decodes the frame of a lossy JPEG 2000 instance for application/octet-stream', async () => {
    const part = onlyPart(await get(`${urls[files.indexOf('JPEG2000.dcm')]}/frames/1`, 'multipart/related; type="application/octet-stream"'));
    expect(part.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT_LE}`);
    expect(part.body.length).toBe(1024 * 256 * 2);
  });
});

describe('files encoded by Cairn, stored again and sent back by default', () => {
  let a: TestArchive;
  const get = getter(() => a);

  beforeAll(async () => {
    a = await createTestArchive();
    await store(a, [sample('CT_small.dcm')]);
  });
  afterAll(async () => {
    await a?.close();
  });

  it.each([
    ['JPEG 2000 Lossless', '1.2.840.10008.1.2.4.90'],
    ['JPEG-LS Lossless', '1.2.840.10008.1.2.4.80'],
    ['RLE Lossless', RLE],
  ])('%s: stored, then sent as Explicit VR Little Endian with the original pixels', async (_, ts) => {
    const encoded = await get(ctUrl, `application/dicom; transfer-syntax=${ts}`);
    expect(encoded.status).toBe(200);
    expect(tsOf(encoded.body)).toBe(ts);
    expect(dcmdump(encoded.body)).toContain('(7fe0,0010) OB (PixelSequence');
    const b = await createTestArchive();
    try {
      const [url] = await store(b, [encoded.body]);
      const res = await b.request.get(url).set('Accept', 'application/dicom').buffer(true).parse(binaryParser);
      expect(res.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
      expect(pixelsOf(res.body)).toEqual(pixelsOf(sample('CT_small.dcm')));
    } finally {
      await b.close();
    }
  });
});
