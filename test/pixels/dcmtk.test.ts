import { afterAll, describe, expect, it } from 'vitest';
import { createPixelCodecs } from '../../server/pixels/codecs.js';
import type { DecodedFrame } from '../../server/pixels/types.js';
import { sampleFrames } from './samples.js';

// Frames encoded by DCMTK (test/fixtures/pixels/README.md), decoded by Cairn
// and compared with the uncompressed originals they were made from.

const pixels = createPixelCodecs({ workers: 2, inlineBytes: 0 });
afterAll(() => pixels.close());

async function decoded(name: string): Promise<DecodedFrame[]> {
  const s = await sampleFrames(name);
  return Promise.all(s.frames.map((f) => pixels.decode(s.transferSyntaxUid, f, s.module)));
}

function errors(a: Buffer, b: Buffer): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    sum += e;
    max = Math.max(max, e);
  }
  return { mean: sum / a.length, max };
}

const ct = decoded('CT_small.dcm');
const grey = decoded('chrGerm.dcm');
const rgb = decoded('SC_rgb_rle_2frame.dcm');

describe('lossless frames from another encoder are identical to their originals', () => {
  for (const [name, label] of [
    ['pixels/ct_be.dcm', 'Explicit VR Big Endian'],
    ['pixels/ct_rle.dcm', 'RLE Lossless, 16-bit signed'],
    ['pixels/ct_jpeg_sv1.dcm', 'JPEG Lossless SV1'],
    ['pixels/ct_jpeg_p14.dcm', 'JPEG Lossless process 14, predictor 6'],
    ['pixels/ct_jls.dcm', 'JPEG-LS Lossless'],
  ]) {
    it(`${label}: CT 16-bit signed`, async () => {
      const [frame] = await decoded(name);
      const [original] = await ct;
      expect(frame.module).toEqual(original.module);
      expect(frame.pixels.equals(original.pixels)).toBe(true);
    });
  }

  for (const [name, label] of [
    ['pixels/rgb_jls.dcm', 'JPEG-LS Lossless'],
    ['pixels/rgb_jpegll.dcm', 'JPEG Lossless process 14'],
  ]) {
    it(`${label}: RGB, two frames`, async () => {
      const frames = await decoded(name);
      const originals = await rgb;
      expect(frames).toHaveLength(2);
      frames.forEach((f, i) => {
        expect(f.module.photometricInterpretation).toBe('RGB');
        expect(f.pixels.equals(originals[i].pixels), `frame ${i + 1}`).toBe(true);
      });
    });
  }
});

describe('lossy frames from another encoder are close to their originals', () => {
  for (const [name, label, mean, max] of [
    ['pixels/grey_baseline.dcm', 'JPEG Baseline', 4, 40],
    ['pixels/grey_extended8.dcm', 'JPEG Extended, 8-bit', 4, 40],
    ['pixels/grey_jls_near2.dcm', 'JPEG-LS near-lossless (NEAR 2)', 2, 2],
  ] as const) {
    it(`${label}: 8-bit grey`, async () => {
      const [frame] = await decoded(name);
      const [original] = await grey;
      const e = errors(frame.pixels, original.pixels);
      expect(e.mean).toBeLessThan(mean);
      expect(e.max).toBeLessThanOrEqual(max);
    });
  }

  it('JPEG Baseline YBR_FULL_422: decoded to RGB close to the original colours', async () => {
    const frames = await decoded('pixels/rgb_baseline.dcm');
    const originals = await rgb;
    frames.forEach((f, i) => {
      expect(f.module.photometricInterpretation).toBe('RGB');
      const e = errors(f.pixels, originals[i].pixels);
      expect(e.mean, `frame ${i + 1}`).toBeLessThan(6);
    });
  });
});
