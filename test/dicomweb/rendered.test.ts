import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLabelRules } from '../../server/labels.js';
import { binaryParser, createTestArchive, multipartBody, parseMultipart, sample, type TestArchive } from '../helpers.js';
import { imageInstance } from '../render/images.js';
import { uid } from '../synthetic.js';

// Rendered resources (PS3.18 §10.4.1.1.3) checked by decoding the images and
// reading pixel values at chosen points.

let a: TestArchive;
const grid = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

/** A 4×4 CT: stored values 824, 1064, 1264 (−200, 40, 240 HU) and the rest 0, window 40/400. */
const ct = imageInstance({
  rows: 4,
  columns: 4,
  values: grid(16, (i) => [824, 1064, 1264][i] ?? 0),
  signed: true,
  attrs: { RescaleIntercept: '-1024', RescaleSlope: '1', WindowCenter: '40', WindowWidth: '400' },
});
/** MONOCHROME1, 8-bit, no window: 0 → white, 100 → black. */
const m1 = imageInstance({ rows: 2, columns: 2, bitsAllocated: 8, photometric: 'MONOCHROME1', values: [0, 50, 100, 100] });
/** Three frames of 8×8, frame k all 60·k, window centre 128 width 256 LINEAR_EXACT (output ≈ input). */
const multi = imageInstance({
  rows: 8,
  columns: 8,
  bitsAllocated: 8,
  frames: 3,
  values: grid(192, (i) => 60 * (Math.floor(i / 64) + 1)),
  attrs: { WindowCenter: '128', WindowWidth: '256', VOILUTFunction: 'LINEAR_EXACT' },
});
/** PALETTE COLOR whose red table (4096 entries) is kept as bulk data, green and blue inline. */
const lut = (f: (i: number) => number, n: number) => {
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeUInt16LE(f(i), i * 2);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
};
const palette = imageInstance({
  rows: 2,
  columns: 2,
  bitsAllocated: 8,
  photometric: 'PALETTE COLOR',
  values: [0, 1, 2, 3],
  attrs: {
    RedPaletteColorLookupTableDescriptor: [4096, 0, 16],
    GreenPaletteColorLookupTableDescriptor: [4, 0, 16],
    BluePaletteColorLookupTableDescriptor: [4, 0, 16],
    RedPaletteColorLookupTableData: lut((i) => (i === 1 ? 0xff00 : 0), 4096),
    GreenPaletteColorLookupTableData: lut((i) => (i === 2 ? 0xff00 : 0), 4),
    BluePaletteColorLookupTableData: lut((i) => (i === 3 ? 0xff00 : 0), 4),
    _vrMap: { RedPaletteColorLookupTableData: 'OW', GreenPaletteColorLookupTableData: 'OW', BluePaletteColorLookupTableData: 'OW' },
  },
});
/** A series of three instances, 2×2 each, all 40, 120 and 200 by instance number. */
const study = uid();
const seriesUid = uid();
const series = [3, 1, 2].map((n) =>
  imageInstance({
    rows: 2,
    columns: 2,
    bitsAllocated: 8,
    values: [0, 40 * (2 * n - 1), 255, 0],
    studyUid: study,
    seriesUid,
    instanceNumber: n,
    attrs: { WindowCenter: '128', WindowWidth: '256', VOILUTFunction: 'LINEAR_EXACT' },
  }),
);
const vip = imageInstance({ rows: 2, columns: 2, bitsAllocated: 8, values: [1, 2, 3, 4], attrs: { PatientID: 'VIP-001' } });

beforeAll(async () => {
  a = await createTestArchive({ labelRules: parseLabelRules(JSON.stringify([{ label: 'vip', when: { PatientID: ['VIP-001'] } }])) });
  const m = multipartBody([ct, m1, multi, palette, ...series, vip].map((x) => x.bytes));
  const res = await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

const url = (x: { studyUid: string; seriesUid: string; sopInstanceUid: string }) =>
  `/dicom-web/studies/${x.studyUid}/series/${x.seriesUid}/instances/${x.sopInstanceUid}`;
const get = (path: string, accept?: string) => {
  const r = a.request.get(path).buffer(true).parse(binaryParser);
  return accept ? r.set('Accept', accept) : r;
};
/** Decoded pixels of an image: width, height, channels and the value at (x, y) channel c. */
async function pixels(image: Buffer) {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  return { ...info, at: (x: number, y: number, c = 0) => data[(y * info.width + x) * info.channels + c] };
}

describe('rendered instance', () => {
  it('is image/jpeg by default, rescaled and windowed by the first stored window', async () => {
    const res = await get(`${url(ct)}/rendered`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
    const p = await pixels(res.body);
    expect([p.width, p.height]).toEqual([4, 4]);
    // JPEG is lossy: values within a few levels of 0, 128, 255.
    expect(p.at(0, 0)).toBeLessThan(8);
    expect(Math.abs(p.at(1, 0) - 128)).toBeLessThan(12);
    expect(p.at(2, 0)).toBeGreaterThan(247);
  });

  it('is exact as image/png, and a window in the query replaces the stored one', async () => {
    const png = await get(`${url(ct)}/rendered`, 'image/png');
    expect(png.headers['content-type']).toBe('image/png');
    const p = await pixels(png.body);
    expect([p.at(0, 0), p.at(1, 0), p.at(2, 0), p.at(3, 0)]).toEqual([0, 128, 255, 0]);
    // Window 240/1 (in HU): only 240 HU and above is white; LINEAR_EXACT 40 ± 100 puts 40 at the middle.
    const narrow = await pixels((await get(`${url(ct)}/rendered?window=240,2`, 'image/png')).body);
    expect([narrow.at(0, 0), narrow.at(1, 0), narrow.at(2, 0)]).toEqual([0, 0, 255]);
    const exact = await pixels((await get(`${url(ct)}/rendered?window=40,200,LINEAR_EXACT`, 'image/png')).body);
    expect([exact.at(0, 0), exact.at(1, 0), exact.at(2, 0)]).toEqual([0, 128, 255]);
  });

  it('inverts MONOCHROME1', async () => {
    const p = await pixels((await get(`${url(m1)}/rendered`, 'image/png')).body);
    expect([p.at(0, 0), p.at(1, 0), p.at(0, 1)]).toEqual([255, 127, 0]);
  });

  it('maps PALETTE COLOR through its tables, reading the one kept as bulk data from the blob', async () => {
    const p = await pixels((await get(`${url(palette)}/rendered`, 'image/png')).body);
    expect(p.channels).toBe(3);
    expect([0, 1, 2].map((c) => p.at(1, 0, c))).toEqual([255, 0, 0]);
    expect([0, 1, 2].map((c) => p.at(0, 1, c))).toEqual([0, 255, 0]);
    expect([0, 1, 2].map((c) => p.at(1, 1, c))).toEqual([0, 0, 255]);
  });

  it('fits the image to a viewport, and shows only the source region when one is given', async () => {
    const big = await pixels((await get(`${url(ct)}/rendered?viewport=64,32`, 'image/png')).body);
    expect([big.width, big.height]).toEqual([32, 32]);
    const region = await pixels((await get(`${url(ct)}/rendered?viewport=2,2,2,0,2,2`, 'image/png')).body);
    expect([region.width, region.height]).toEqual([2, 2]);
    expect(region.at(0, 0)).toBe(255);
    const flipped = await pixels((await get(`${url(ct)}/rendered?viewport=4,1,4,0,-4,1`, 'image/png')).body);
    expect([flipped.at(0, 0), flipped.at(1, 0), flipped.at(2, 0), flipped.at(3, 0)]).toEqual([0, 255, 128, 0]);
  });

  it('honours quality for JPEG', async () => {
    const values = grid(64 * 64, (i) => (i * 7919) % 256);
    const noisy = imageInstance({ rows: 64, columns: 64, bitsAllocated: 8, values });
    const m = multipartBody([noisy.bytes]);
    await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    const low = await get(`${url(noisy)}/rendered?quality=10`, 'image/jpeg');
    const high = await get(`${url(noisy)}/rendered?quality=95`, 'image/jpeg');
    expect(low.body.length).toBeLessThan(high.body.length / 2);
  });

  it('answers a multi-frame instance with its first frame, or every frame as an animated GIF', async () => {
    const first = await pixels((await get(`${url(multi)}/rendered`, 'image/png')).body);
    expect(first.at(3, 3)).toBe(60);
    const gif = await get(`${url(multi)}/rendered`, 'image/gif');
    expect(gif.headers['content-type']).toBe('image/gif');
    const meta = await sharp(gif.body, { pages: -1 }).metadata();
    expect(meta.pages).toBe(3);
    const third = await pixels(await sharp(gif.body, { page: 2 }).png().toBuffer());
    expect(Math.abs(third.at(3, 3) - 179)).toBeLessThanOrEqual(2);
  });

  it('renders frames by number, several as a multipart payload', async () => {
    const one = await pixels((await get(`${url(multi)}/frames/2/rendered`, 'image/png')).body);
    expect(one.at(0, 0)).toBe(120);
    const res = await get(`${url(multi)}/frames/3,1/rendered`, 'multipart/related; type="image/png"');
    expect(res.headers['content-type']).toMatch(/^multipart\/related; type="image\/png"/);
    const parts = parseMultipart(res.body, res.headers['content-type']);
    expect(await Promise.all(parts.map(async (x) => (await pixels(x.body)).at(0, 0)))).toEqual([179, 60]);
    expect((await get(`${url(multi)}/frames/4/rendered`)).status).toBe(404);
  });

  it('answers 406 with a JSON body for a media type it cannot make', async () => {
    const res = await a.request.get(`${url(ct)}/rendered`).set('Accept', 'image/webp');
    expect(res.status).toBe(406);
    expect(res.body.message ?? JSON.stringify(res.body)).toMatch(/image\/jpeg/);
  });

  it('answers 400 for a bad window, viewport or quality', async () => {
    for (const q of ['window=40', 'window=40,0', 'window=1,2,CUBIC', 'viewport=0,10', 'viewport=10', 'viewport=4,4,9,9,2,2', 'quality=0', 'quality=abc']) {
      const res = await a.request.get(`${url(ct)}/rendered?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.type, q).toBe('application/json');
    }
  });

  it('accepts the annotation parameter and draws nothing', async () => {
    const plain = await get(`${url(ct)}/rendered`, 'image/png');
    const annotated = await get(`${url(ct)}/rendered?annotation=patient,technique`, 'image/png');
    expect(annotated.status).toBe(200);
    expect(Buffer.compare(plain.body, annotated.body)).toBe(0);
  });

  it('is 404 for a study the caller may not see, like a missing one', async () => {
    const hidden = await a.request.get(`${url(vip)}/rendered`);
    const missing = await a.request.get(`${url({ ...vip, sopInstanceUid: uid() })}/rendered`);
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    expect((await a.request.get(`/dicom-web/studies/${vip.studyUid}/rendered`)).status).toBe(404);
  });
});

describe('rendered series and study', () => {
  it('is a multipart payload of one image per instance, in instance order', async () => {
    for (const path of [`/dicom-web/studies/${study}/series/${seriesUid}/rendered`, `/dicom-web/studies/${study}/rendered`]) {
      const res = await get(path, 'multipart/related; type="image/png"');
      expect(res.status).toBe(200);
      const parts = parseMultipart(res.body, res.headers['content-type']);
      expect(parts.map((p) => p.headers['content-type'])).toEqual(['image/png', 'image/png', 'image/png']);
      expect(await Promise.all(parts.map(async (x) => (await pixels(x.body)).at(1, 0)))).toEqual([40, 120, 199]);
    }
  });

  it('is image/jpeg parts when any image is accepted', async () => {
    const res = await get(`/dicom-web/studies/${study}/rendered`);
    expect(res.headers['content-type']).toMatch(/^multipart\/related; type="image\/jpeg"/);
  });
});

describe('thumbnail', () => {
  /** The cached thumbnails in the blob store. */
  async function cached(): Promise<string[]> {
    const keys: string[] = [];
    for await (const b of a.deps.blobs.list('thumbnails/')) keys.push(b.key);
    return keys;
  }

  it('of a series is the middle instance, fit in 128 pixels, and of a study its first series', async () => {
    for (const path of [`/dicom-web/studies/${study}/series/${seriesUid}/thumbnail`, `/dicom-web/studies/${study}/thumbnail`]) {
      const res = await get(path, 'image/png');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('image/png');
      const p = await pixels(res.body);
      expect([p.width, p.height]).toEqual([128, 128]);
      // Instance 2 of 3 holds 120 in its top-right quarter (the others 40 and 199), blurred by the scaling.
      expect(Math.abs(p.at(120, 4) - 120)).toBeLessThan(20);
    }
  });

  it('of a multi-frame instance is its middle frame, as image/jpeg by default, sized by viewport', async () => {
    const res = await get(`${url(multi)}/thumbnail?viewport=16,16`);
    expect(res.headers['content-type']).toBe('image/jpeg');
    const p = await pixels(res.body);
    expect([p.width, p.height]).toEqual([16, 16]);
    expect(Math.abs(p.at(8, 8) - 120)).toBeLessThan(6);
    const frame3 = await pixels((await get(`${url(multi)}/frames/3/thumbnail?viewport=16,16`, 'image/png')).body);
    expect(frame3.at(8, 8)).toBe(179);
  });

  it('is kept in the blob store after the first request and read from there after', async () => {
    const before = await cached();
    const first = await get(`${url(ct)}/thumbnail?viewport=32,32`, 'image/png');
    const added = (await cached()).filter((k) => !before.includes(k));
    expect(added).toHaveLength(1);
    expect(added[0].startsWith('thumbnails/instances/')).toBe(true);
    // Replace the cached bytes: a second request answers with what the store holds.
    const marker = await sharp({ create: { width: 3, height: 3, channels: 3, background: '#00ff00' } })
      .png()
      .toBuffer();
    await a.deps.blobs.put(added[0], (await import('node:stream')).Readable.from([marker]));
    const second = await get(`${url(ct)}/thumbnail?viewport=32,32`, 'image/png');
    expect(Buffer.compare(second.body, marker)).toBe(0);
    expect(Buffer.compare(second.body, first.body)).not.toBe(0);
  });

  it('is deleted with its instance', async () => {
    const doomed = imageInstance({ rows: 2, columns: 2, bitsAllocated: 8, values: [1, 2, 3, 4] });
    const m = multipartBody([doomed.bytes]);
    await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    const before = await cached();
    expect((await get(`${url(doomed)}/thumbnail`)).status).toBe(200);
    expect((await get(`${url(doomed)}/thumbnail`, 'image/png')).status).toBe(200);
    const made = (await cached()).filter((k) => !before.includes(k));
    expect(made).toHaveLength(2);
    expect((await a.request.delete(url(doomed))).status).toBeLessThan(300);
    const after = await cached();
    expect(made.filter((k) => after.includes(k))).toEqual([]);
  });

  it('of a series whose middle instance cannot be decoded is made from the next instance', async () => {
    // Instance 2 declares 16 × 16 pixels but holds 4, so its frame cannot be rendered (422).
    const mixedStudy = uid();
    const mixed = uid();
    const at = { studyUid: mixedStudy, seriesUid: mixed, rows: 2, columns: 2, bitsAllocated: 8 as const };
    const window = { WindowCenter: '128', WindowWidth: '256', VOILUTFunction: 'LINEAR_EXACT' };
    const good = (n: number, v: number) => imageInstance({ ...at, values: [v, v, v, v], instanceNumber: n, attrs: window });
    const short = imageInstance({ ...at, values: [1, 2, 3, 4], instanceNumber: 2, attrs: { Rows: 16, Columns: 16 } });
    const m = multipartBody([good(1, 30), short, good(3, 210)].map((x) => x.bytes));
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
    for (const path of [`/dicom-web/studies/${mixedStudy}/series/${mixed}/thumbnail`, `/dicom-web/studies/${mixedStudy}/thumbnail`]) {
      const res = await get(path, 'image/png');
      expect(res.status).toBe(200);
      // The one nearest the middle after it: instance 3, all 210.
      expect(Math.abs((await pixels(res.body)).at(64, 64) - 210)).toBeLessThan(6);
    }
  });

  it('that cannot be made from any instance answers the refusal as a JSON 4xx', async () => {
    const badStudy = uid();
    const bad = uid();
    const broken = [1, 2].map((n) =>
      imageInstance({
        studyUid: badStudy,
        seriesUid: bad,
        instanceNumber: n,
        rows: 2,
        columns: 2,
        bitsAllocated: 8,
        values: [1, 2, 3, 4],
        attrs: { Rows: 16, Columns: 16 },
      }),
    );
    const m = multipartBody(broken.map((x) => x.bytes));
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
    const res = await a.request.get(`/dicom-web/studies/${badStudy}/series/${bad}/thumbnail`);
    expect(res.status).toBe(422);
    expect(res.type).toBe('application/json');
    expect(JSON.stringify(res.body)).toMatch(/none of the 2 images tried/);
  });

  it('answers 406 for a media type other than JPEG or PNG, and 404 when hidden', async () => {
    expect((await a.request.get(`${url(ct)}/thumbnail`).set('Accept', 'image/gif')).status).toBe(406);
    expect((await a.request.get(`${url(vip)}/thumbnail`)).status).toBe(404);
    expect((await a.request.get(`/dicom-web/studies/${vip.studyUid}/thumbnail`)).status).toBe(404);
  });
});

describe('bad pixel data', () => {
  it('fails that request alone with a 422 JSON body', async () => {
    // Declares 16 × 16 pixels but holds 4: the frame cannot be located or rendered.
    const short = imageInstance({ rows: 2, columns: 2, bitsAllocated: 8, values: [1, 2, 3, 4], attrs: { Rows: 16, Columns: 16 } });
    const m = multipartBody([short.bytes]);
    await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    const res = await a.request.get(`${url(short)}/rendered`);
    expect(res.status).toBe(422);
    expect(res.type).toBe('application/json');
    expect((await get(`${url(ct)}/rendered`)).status).toBe(200);
  });
});

describe('accept query parameter', () => {
  it('stands for the Accept header, as an <img src> link sends it (PS3.18 §8.3.3.1)', async () => {
    const res = await get(`${url(ct)}/thumbnail?accept=image/png`, 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8');
    expect(res.headers['content-type']).toBe('image/png');
    const jpeg = await get(`${url(ct)}/rendered`, 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8');
    expect(jpeg.headers['content-type']).toBe('image/jpeg');
  });
});

describe('animation size', () => {
  it('refuses an animated GIF of more pixels than Cairn puts in one image with a 422', async () => {
    // 65 frames of 512×512 is one frame over the limit of 64.
    const many = imageInstance({ rows: 512, columns: 512, bitsAllocated: 8, frames: 65, values: new Array(65 * 512 * 512).fill(7) });
    const m = multipartBody([many.bytes]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
    const res = await a.request.get(`${url(many)}/rendered`).set('Accept', 'image/gif');
    expect(res.status).toBe(422);
    expect(res.body.error ?? res.body.code).toBe('AnimationTooLarge');
    expect((await get(`${url(many)}/frames/1,2/rendered`, 'image/gif')).status).toBe(200);
  });
});

describe('stored compressed', () => {
  /** Stores a sample and answers its instance URL below /dicom-web. */
  async function stored(name: string): Promise<string> {
    const m = multipartBody([sample(name)]);
    const res = await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
    expect(res.status, name).toBe(200);
    return new URL(res.body['00081199'].Value[0]['00081190'].Value[0] as string).pathname;
  }

  it.each([
    ['CT_small.dcm', 1],
    ['JPEG2000.dcm', 1],
  ])('renders %s at its own size, a real picture', async (name, channels) => {
    const path = await stored(name);
    const meta = (await a.request.get(`${path}/metadata`)).body[0];
    const res = await get(`${path}/rendered`, 'image/png');
    expect(res.status).toBe(200);
    expect((await sharp(res.body).metadata()).channels).toBe(channels);
    const p = await pixels(res.body);
    expect([p.width, p.height]).toEqual([meta['00280011'].Value[0], meta['00280010'].Value[0]]);
    const seen = new Set<number>();
    for (let y = 0; y < p.height; y += 4) for (let x = 0; x < p.width; x += 4) seen.add(p.at(x, y));
    expect(seen.size).toBeGreaterThan(16);
  });

  it('renders the RLE and JPEG Baseline colour samples as RGB', async () => {
    const rle = await stored('SC_rgb_rle_2frame.dcm');
    const p = await pixels((await get(`${rle}/rendered`, 'image/png')).body);
    // The pydicom SC_rgb test image: ten horizontal bands, the first pure red.
    expect([0, 1, 2].map((c) => p.at(50, 2, c))).toEqual([255, 0, 0]);
    const jpeg = await stored('SC_rgb_jpeg.dcm');
    const res = await get(`${jpeg}/rendered`, 'image/png');
    expect(res.status).toBe(200);
    const meta = (await a.request.get(`${jpeg}/metadata`)).body[0];
    const { width, height, channels } = await sharp(res.body).metadata();
    expect({ width, height, channels }).toEqual({ width: meta['00280011'].Value[0], height: meta['00280010'].Value[0], channels: 3 });
  });

  it('animates both frames of the RLE sample as a GIF', async () => {
    const path = await stored('SC_rgb_rle_2frame.dcm');
    const gif = await get(`${path}/rendered`, 'image/gif');
    expect((await sharp(gif.body, { pages: -1 }).metadata()).pages).toBe(2);
    // The second frame is the first inverted: its first band is cyan.
    const second = await pixels(await sharp(gif.body, { page: 1 }).png().toBuffer());
    expect([0, 1, 2].map((c) => second.at(50, 2, c))).toEqual([0, 255, 255]);
  });
});
