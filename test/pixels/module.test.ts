import { describe, expect, it } from 'vitest';
import { pixelModuleOf } from '../../server/pixels/module.js';
import { PixelError } from '../../server/pixels/types.js';
import { sampleFrames } from './samples.js';

describe('pixelModuleOf', () => {
  it('reads the Image Pixel module of a sample', async () => {
    const rle = await sampleFrames('SC_rgb_rle_2frame.dcm');
    expect(rle.module).toEqual({
      rows: 100,
      columns: 100,
      samplesPerPixel: 3,
      bitsAllocated: 8,
      bitsStored: 8,
      highBit: 7,
      pixelRepresentation: 0,
      photometricInterpretation: 'RGB',
      planarConfiguration: 0,
      numberOfFrames: 2,
    });
  });

  it('defaults what PS3.3 lets an instance leave out, and refuses a missing Rows with 422', () => {
    const ds = { '00280010': { vr: 'US', Value: [4] }, '00280011': { vr: 'US', Value: [5] }, '00280100': { vr: 'US', Value: [16] } };
    expect(pixelModuleOf(ds)).toMatchObject({ samplesPerPixel: 1, bitsStored: 16, highBit: 15, photometricInterpretation: 'MONOCHROME2', numberOfFrames: 1 });
    const { '00280010': _, ...noRows } = ds;
    expect(() => pixelModuleOf(noRows)).toThrow(PixelError);
    expect(() => pixelModuleOf(noRows)).toThrow(/Rows/);
  });
});
