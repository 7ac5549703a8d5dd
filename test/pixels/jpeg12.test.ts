import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createPixelCodecs } from '../../server/pixels/codecs.js';
import { PixelError } from '../../server/pixels/types.js';
import { renderFrame } from '../../server/render/pipeline.js';
import { sampleFrames } from './samples.js';

// JPEG Extended (process 2 & 4) frames of 12-bit samples, decoded in the pool
// and compared with DCMTK's dcmdjpeg (test/fixtures/pixels/README.md).

const pixels = createPixelCodecs({ workers: 1, inlineBytes: 0, inlineRenderPixels: 0 });
afterAll(() => pixels.close());

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('12-bit JPEG Extended (process 4)', () => {
  it('decodes JPEG-lossy.dcm to exactly the pixels dcmdjpeg makes of it', async () => {
    const s = await sampleFrames('JPEG-lossy.dcm');
    const d = await pixels.decode(s.transferSyntaxUid, s.frames[0], s.module);
    expect(d.module).toMatchObject({ rows: 1024, columns: 256, bitsAllocated: 16, bitsStored: 12, photometricInterpretation: 'MONOCHROME2' });
    // The SHA-256 of the Pixel Data that DCMTK 3.6.7's dcmdjpeg writes for this sample.
    expect(sha256(d.pixels)).toBe('d30242775a414c01d616447854ebe3f2b20259822894bcd6891f879bcdcbf313');
  });

  it('decodes a CT made 12-bit by dcmcjpeg +ee to dcmdjpeg’s pixels, within the loss of the coding from the original', async () => {
    const s = await sampleFrames('pixels/ct_jpeg12.dcm');
    const d = await pixels.decode(s.transferSyntaxUid, s.frames[0], s.module);
    expect(sha256(d.pixels)).toBe('a9c3bee1943a7562089953c202bbdbf093f05194ba8d1cf0e4ea0dbdb2de6903');
    // DCMTK coded the 16-bit signed CT as 12-bit unsigned with Rescale Intercept -1919 instead of -1024: same Hounsfield units.
    const original = await sampleFrames('CT_small.dcm');
    let sum = 0;
    let max = 0;
    for (let i = 0; i < 128 * 128; i++) {
      const e = Math.abs(d.pixels.readUInt16LE(2 * i) - 1919 - (original.frames[0].readInt16LE(2 * i) - 1024));
      sum += e;
      max = Math.max(max, e);
    }
    expect(sum / (128 * 128)).toBeLessThan(8);
    expect(max).toBeLessThan(120);
  });

  it('renders a 12-bit JPEG frame in one trip to the pool', async () => {
    const s = await sampleFrames('JPEG-lossy.dcm');
    const options = { window: { center: 2048, width: 4096, fn: 'LINEAR' as const } };
    const made = await pixels.render(s.transferSyntaxUid, s.frames[0], s.module, options);
    const here = renderFrame(await pixels.decode(s.transferSyntaxUid, s.frames[0], s.module), options);
    expect(made.data.equals(here.data)).toBe(true);
    const jpeg = await pixels.image(s.transferSyntaxUid, s.frames[0], s.module, options, { type: 'image/jpeg' });
    expect([...jpeg.subarray(0, 2)]).toEqual([0xff, 0xd8]);
  });

  it('answers a truncated 12-bit frame with 422, and decodes the next good one', async () => {
    const s = await sampleFrames('JPEG-lossy.dcm');
    const cut = s.frames[0].subarray(0, s.frames[0].length >> 1);
    const err = await pixels.decode(s.transferSyntaxUid, cut, s.module).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelError);
    expect(err).toMatchObject({ status: 422, code: 'CorruptPixelData' });
    const garbled = Buffer.from(s.frames[0]);
    for (let i = 700; i < garbled.length - 100; i += 7) garbled[i] = 0xff;
    const bad = await pixels.decode(s.transferSyntaxUid, garbled, s.module).catch((e: unknown) => e);
    if (bad instanceof Error) expect(bad).toMatchObject({ status: 422 });
    const d = await pixels.decode(s.transferSyntaxUid, s.frames[0], s.module);
    expect(sha256(d.pixels)).toBe('d30242775a414c01d616447854ebe3f2b20259822894bcd6891f879bcdcbf313');
  });
});
