import { describe, expect, it } from 'vitest';
import { toRgb } from '../../server/pixels/colour.js';
import type { PixelModule } from '../../server/pixels/types.js';

const ybr: PixelModule = {
  rows: 1,
  columns: 4,
  samplesPerPixel: 3,
  bitsAllocated: 8,
  bitsStored: 8,
  highBit: 7,
  pixelRepresentation: 0,
  photometricInterpretation: 'YBR_FULL',
  planarConfiguration: 0,
  numberOfFrames: 1,
};

describe('toRgb', () => {
  it('converts YBR_FULL with the PS3.3 §C.7.6.3.1.2 equations', () => {
    // Grey, then pure red, green and blue as a YBR_FULL encoder writes them (rounded).
    const frame = { module: ybr, pixels: Buffer.from([128, 128, 128, 76, 85, 255, 150, 44, 21, 29, 255, 107]) };
    const rgb = toRgb(frame);
    expect(rgb.module.photometricInterpretation).toBe('RGB');
    const px = [...rgb.pixels];
    const near = (got: number[], want: number[]) => {
      for (const [i, v] of got.entries()) expect(Math.abs(v - want[i])).toBeLessThanOrEqual(2);
    };
    near(px.slice(0, 3), [128, 128, 128]);
    near(px.slice(3, 6), [255, 0, 0]);
    near(px.slice(6, 9), [0, 255, 0]);
    near(px.slice(9, 12), [0, 0, 255]);
  });

  it('returns other frames unchanged', () => {
    const frame = { module: { ...ybr, photometricInterpretation: 'RGB' }, pixels: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) };
    expect(toRgb(frame)).toBe(frame);
  });
});
