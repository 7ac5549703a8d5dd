import { afterAll, describe, expect, it } from 'vitest';
import { DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE } from '../../server/dicom/transfer-syntax.js';
import { createPixelCodecs } from '../../server/pixels/codecs.js';
import { PixelError, type PixelModule } from '../../server/pixels/types.js';
import { sampleFrames } from './samples.js';

// inlineBytes 0: every frame goes through the worker pool, as large frames do.
const pixels = createPixelCodecs({ workers: 1, inlineBytes: 0 });
afterAll(() => pixels.close());

const mono8: PixelModule = {
  rows: 2,
  columns: 4,
  samplesPerPixel: 1,
  bitsAllocated: 8,
  bitsStored: 8,
  highBit: 7,
  pixelRepresentation: 0,
  photometricInterpretation: 'MONOCHROME2',
  planarConfiguration: 0,
  numberOfFrames: 1,
};

function rgbAt(p: Buffer, columns: number, row: number, col: number): number[] {
  const i = (row * columns + col) * 3;
  return [p[i], p[i + 1], p[i + 2]];
}

describe('native frames', () => {
  it('decodes Explicit VR Little Endian as the stored bytes', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const d = await pixels.decode(ct.transferSyntaxUid, ct.frames[0], ct.module);
    expect(d.module).toEqual(ct.module);
    expect(d.pixels.equals(ct.frames[0])).toBe(true);
    // CT_small is signed: its padding value is -2000 (PixelPaddingValue), kept as two's complement.
    expect(d.pixels.readInt16LE(0)).toBe(175);
  });

  it('decodes Implicit VR Little Endian to the same pixels as the explicit encoding of the same image', async () => {
    const explicit = await sampleFrames('MR_small.dcm');
    const implicit = await sampleFrames('MR_small_implicit.dcm');
    expect(implicit.transferSyntaxUid).toBe(IMPLICIT_VR_LE);
    const a = await pixels.decode(EXPLICIT_VR_LE, explicit.frames[0], explicit.module);
    const b = await pixels.decode(IMPLICIT_VR_LE, implicit.frames[0], implicit.module);
    expect(b.pixels.equals(a.pixels)).toBe(true);
  });

  it('swaps the bytes of 16-bit Explicit VR Big Endian samples', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const be = Buffer.from(ct.frames[0]).swap16();
    const d = await pixels.decode(EXPLICIT_VR_BE, be, ct.module);
    expect(d.pixels.equals(ct.frames[0])).toBe(true);
  });

  it('swaps the bytes of 32-bit Explicit VR Big Endian samples and leaves 8-bit ones alone', async () => {
    const m32 = { ...mono8, rows: 1, columns: 2, bitsAllocated: 32, bitsStored: 32, highBit: 31 };
    const d32 = await pixels.decode(EXPLICIT_VR_BE, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), m32);
    expect([...d32.pixels]).toEqual([4, 3, 2, 1, 8, 7, 6, 5]);
    const d8 = await pixels.decode(EXPLICIT_VR_BE, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), mono8);
    expect([...d8.pixels]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('decodes a Deflated Explicit VR Little Endian frame (already inflated) as native pixels', async () => {
    const ct = await sampleFrames('CT_small.dcm');
    const d = await pixels.decode(DEFLATED_EXPLICIT_VR_LE, ct.frames[0], ct.module);
    expect(d.pixels.equals(ct.frames[0])).toBe(true);
  });

  it('turns planar configuration 1 into colour-by-pixel', async () => {
    const m = { ...mono8, rows: 1, columns: 3, samplesPerPixel: 3, photometricInterpretation: 'RGB', planarConfiguration: 1 as const };
    const d = await pixels.decode(EXPLICIT_VR_LE, Buffer.from([1, 2, 3, 10, 20, 30, 100, 110, 120]), m);
    expect([...d.pixels]).toEqual([1, 10, 100, 2, 20, 110, 3, 30, 120]);
    expect(d.module.planarConfiguration).toBe(0);
  });

  it('unpacks 1-bit pixels to a byte each, the first pixel in the least significant bit (PS3.5 §8.1.1)', async () => {
    const m = { ...mono8, rows: 2, columns: 5, bitsAllocated: 1, bitsStored: 1, highBit: 0 };
    // 10 pixels: 1 0 1 1 0 0 0 1 | 1 1
    const d = await pixels.decode(EXPLICIT_VR_LE, Buffer.from([0b10001101, 0b00000011]), m);
    expect([...d.pixels]).toEqual([1, 0, 1, 1, 0, 0, 0, 1, 1, 1]);
    expect(d.module).toMatchObject({ bitsAllocated: 8, bitsStored: 1, highBit: 0 });
  });

  it('expands native YBR_FULL_422 to YBR_FULL', async () => {
    const m = { ...mono8, rows: 1, columns: 2, samplesPerPixel: 3, photometricInterpretation: 'YBR_FULL_422' };
    const d = await pixels.decode(EXPLICIT_VR_LE, Buffer.from([10, 20, 128, 130]), m);
    expect([...d.pixels]).toEqual([10, 128, 130, 20, 128, 130]);
    expect(d.module.photometricInterpretation).toBe('YBR_FULL');
  });

  it('passes MONOCHROME1 and signed pixels through unchanged', async () => {
    const m = { ...mono8, bitsAllocated: 16, bitsStored: 12, highBit: 11, pixelRepresentation: 1 as const, photometricInterpretation: 'MONOCHROME1' };
    const frame = Buffer.alloc(16);
    frame.writeInt16LE(-2048, 0);
    frame.writeInt16LE(2047, 2);
    const d = await pixels.decode(EXPLICIT_VR_LE, frame, m);
    expect(d.module).toEqual(m);
    expect(d.pixels.readInt16LE(0)).toBe(-2048);
    expect(d.pixels.readInt16LE(2)).toBe(2047);
  });

  it('accepts a frame padded to even length and refuses one shorter than its module', async () => {
    const m = { ...mono8, rows: 1, columns: 3 };
    const d = await pixels.decode(EXPLICIT_VR_LE, Buffer.from([7, 8, 9, 0]), m);
    expect([...d.pixels]).toEqual([7, 8, 9]);
    const err = await pixels.decode(EXPLICIT_VR_LE, Buffer.from([7, 8]), m).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelError);
    expect(err).toMatchObject({ status: 422, code: 'CorruptPixelData' });
  });

  it('decodes small native frames on the calling thread to the same result', async () => {
    const inline = createPixelCodecs({ workers: 1 });
    const ct = await sampleFrames('CT_small.dcm');
    const d = await inline.decode(EXPLICIT_VR_BE, Buffer.from(ct.frames[0]).swap16(), ct.module);
    expect(d.pixels.equals(ct.frames[0])).toBe(true);
    await inline.close();
  });
});

describe('encapsulated samples', () => {
  it('decodes both frames of an RLE Lossless RGB sample to their known colour bars', async () => {
    const rle = await sampleFrames('SC_rgb_rle_2frame.dcm');
    expect(rle.frames).toHaveLength(2);
    const f1 = await pixels.decode(rle.transferSyntaxUid, rle.frames[0], rle.module);
    const f2 = await pixels.decode(rle.transferSyntaxUid, rle.frames[1], rle.module);
    expect(f1.module).toMatchObject({ photometricInterpretation: 'RGB', planarConfiguration: 0 });
    // The pydicom SC_rgb test image: ten horizontal bands; the second frame is the first inverted.
    const bands = [
      [255, 0, 0],
      [255, 128, 128],
      [0, 255, 0],
      [128, 255, 128],
      [0, 0, 255],
      [128, 128, 255],
      [0, 0, 0],
      [64, 64, 64],
      [192, 192, 192],
      [255, 255, 255],
    ];
    bands.forEach((rgb, i) => {
      expect(rgbAt(f1.pixels, 100, i * 10 + 5, 50)).toEqual(rgb);
      expect(rgbAt(f2.pixels, 100, i * 10 + 5, 50)).toEqual(rgb.map((v) => 255 - v));
    });
  });

  it('decodes a JPEG Baseline RGB sample to RGB pixels', async () => {
    const jpeg = await sampleFrames('SC_rgb_jpeg.dcm');
    const d = await pixels.decode(jpeg.transferSyntaxUid, jpeg.frames[0], jpeg.module);
    expect(d.module).toMatchObject({ photometricInterpretation: 'RGB', samplesPerPixel: 3, bitsAllocated: 8 });
    expect(d.pixels.length).toBe(jpeg.module.rows * jpeg.module.columns * 3);
  });

  it('decodes a lossy JPEG 2000 sample to 16-bit signed pixels within its stored range', async () => {
    const j2k = await sampleFrames('JPEG2000.dcm');
    const d = await pixels.decode(j2k.transferSyntaxUid, j2k.frames[0], j2k.module);
    expect(d.pixels.length).toBe(1024 * 256 * 2);
    const values = new Int16Array(d.pixels.buffer, d.pixels.byteOffset, d.pixels.length / 2);
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    // The data set declares SmallestImagePixelValue 0 and LargestImagePixelValue 278; coded at
    // about 160:1, the wavelet rings past both ends by a few tens.
    expect(min).toBeLessThan(0);
    expect(min).toBeGreaterThanOrEqual(-64);
    expect(max).toBeGreaterThan(200);
    expect(max).toBeLessThanOrEqual(340);
  });

  it('decodes a 12-bit JPEG Extended (process 4) sample (compared with DCMTK in jpeg12.test.ts)', async () => {
    const lossy = await sampleFrames('JPEG-lossy.dcm');
    const d = await pixels.decode(lossy.transferSyntaxUid, lossy.frames[0], lossy.module);
    expect(d.module).toMatchObject({ bitsAllocated: 16, bitsStored: 12 });
    expect(d.pixels.length).toBe(1024 * 256 * 2);
  });
});
