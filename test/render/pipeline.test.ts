import { describe, expect, it } from 'vitest';
import type { DecodedFrame, PixelModule } from '../../server/pixels/types.js';
import { renderAttributesOf, parseWindow } from '../../server/render/attributes.js';
import { applyWindow, renderFrame, type RenderOptions } from '../../server/render/pipeline.js';

function mono(values: number[], o: Partial<PixelModule> = {}): DecodedFrame {
  const bitsAllocated = o.bitsAllocated ?? 16;
  const pixels = Buffer.alloc(values.length * (bitsAllocated / 8));
  for (const [i, v] of values.entries()) {
    if (bitsAllocated === 8) pixels.writeUInt8(v & 0xff, i);
    else pixels.writeUInt16LE(v & 0xffff, i * 2);
  }
  const module: PixelModule = {
    rows: 1,
    columns: values.length,
    samplesPerPixel: 1,
    bitsAllocated,
    bitsStored: bitsAllocated,
    highBit: bitsAllocated - 1,
    pixelRepresentation: 0,
    photometricInterpretation: 'MONOCHROME2',
    planarConfiguration: 0,
    numberOfFrames: 1,
    ...o,
  };
  return { module, pixels };
}

const render = (f: DecodedFrame, o?: RenderOptions) => [...renderFrame(f, o).data];

describe('grey pipeline (PS3.3 §C.11)', () => {
  it('stretches the frame range over 0-255 when no window is stored or asked', () => {
    expect(render(mono([0, 50, 100], { bitsAllocated: 8 }))).toEqual([0, 128, 255]);
  });

  it('applies rescale then a LINEAR window (CT in Hounsfield units)', () => {
    const o: RenderOptions = { rescale: { slope: 1, intercept: -1024 }, window: { center: 40, width: 400, fn: 'LINEAR' } };
    expect(render(mono([824, 1064, 1264]), o)).toEqual([0, 128, 255]);
  });

  it('applies LINEAR_EXACT and SIGMOID by their formulas', () => {
    expect(render(mono([0, 100, 150]), { window: { center: 100, width: 200, fn: 'LINEAR_EXACT' } })).toEqual([0, 128, 191]);
    expect(render(mono([100, 200]), { window: { center: 100, width: 200, fn: 'SIGMOID' } })).toEqual([128, 225]);
  });

  it('inverts MONOCHROME1', () => {
    const f = mono([0, 50, 100], { bitsAllocated: 8, photometricInterpretation: 'MONOCHROME1' });
    expect(render(f)).toEqual([255, 127, 0]);
  });

  it('reads signed stored values as two’s complement', () => {
    const f = mono([-1000, 0, 1000], { pixelRepresentation: 1 });
    expect(render(f, { window: { center: 0, width: 2000, fn: 'LINEAR' } })).toEqual([0, 128, 255]);
  });

  it('drops bits above Bits Stored (overlay bits in the high bits)', () => {
    const f = mono([0xf000, 0xf0ff, 0x0fff], { bitsStored: 12, highBit: 11 });
    expect(render(f, { window: { center: 2048, width: 4096, fn: 'LINEAR_EXACT' } })).toEqual([0, 16, 255]);
  });

  it('looks values up in a modality LUT and a VOI LUT', () => {
    const modalityLut = { firstMapped: 0, bitsPerEntry: 16, data: [0, 1000, 2000, 3000] };
    expect(render(mono([0, 1, 3]), { modalityLut, window: { center: 1500, width: 3000, fn: 'LINEAR_EXACT' } })).toEqual([0, 85, 255]);
    const voiLut = { firstMapped: 10, bitsPerEntry: 8, data: [0, 85, 170, 255] };
    expect(render(mono([5, 11, 12, 99]), { voiLut })).toEqual([0, 85, 170, 255]);
  });

  it('maps PALETTE COLOR through its three LUTs, 16-bit entries scaled to 8 bits', () => {
    const lut = (d: number[]) => ({ firstMapped: 0, bitsPerEntry: 16, data: d });
    const palette = [lut([0, 0xff00, 0, 0x8000]), lut([0, 0, 0xff00, 0x8000]), lut([0, 0, 0, 0x8000])] as RenderOptions['palette'];
    const f = mono([1, 2, 3], { bitsAllocated: 8, photometricInterpretation: 'PALETTE COLOR' });
    expect(render(f, { palette })).toEqual([255, 0, 0, 0, 255, 0, 128, 128, 128]);
  });

  it('passes RGB through and converts YBR_FULL to RGB', () => {
    const rgb = mono([10, 20, 30], { bitsAllocated: 8, samplesPerPixel: 3, photometricInterpretation: 'RGB', columns: 1 });
    expect(render(rgb)).toEqual([10, 20, 30]);
    const ybr = mono([128, 128, 128, 76, 85, 255], { bitsAllocated: 8, samplesPerPixel: 3, photometricInterpretation: 'YBR_FULL', columns: 2 });
    const [r0, g0, b0, r1, g1, b1] = render(ybr);
    expect([r0, g0, b0]).toEqual([128, 128, 128]);
    expect(r1).toBeGreaterThan(250);
    expect(g1).toBeLessThan(5);
    expect(b1).toBeLessThan(5);
  });

  it('refuses a frame shorter than its module says with a 422', () => {
    const f = { ...mono([1, 2]), module: { ...mono([1, 2]).module, rows: 10 } };
    expect(() => renderFrame(f)).toThrow(expect.objectContaining({ status: 422, code: 'PixelDataTruncated' }));
  });

  it('follows the LINEAR edges of PS3.3 §C.11.2.1.2.1 exactly', () => {
    // c=50, w=11: below 50-0.5-5 = 44.5 is 0, above 44.5+10 = 54.5 is 255.
    const w = { center: 50, width: 11, fn: 'LINEAR' as const };
    expect(applyWindow(44.5, w)).toBe(0);
    expect(applyWindow(54.6, w)).toBe(255);
    expect(applyWindow(49.5, w)).toBeCloseTo(127.5);
  });
});

describe('rendering attributes from stored DICOM JSON', () => {
  it('reads module, rescale, the first of several windows and its function', async () => {
    const json = {
      '00280002': { vr: 'US', Value: [1] },
      '00280004': { vr: 'CS', Value: ['MONOCHROME2'] },
      '00280010': { vr: 'US', Value: [2] },
      '00280011': { vr: 'US', Value: [3] },
      '00280100': { vr: 'US', Value: [16] },
      '00280101': { vr: 'US', Value: [12] },
      '00280103': { vr: 'US', Value: [1] },
      '00281050': { vr: 'DS', Value: [40, 400] },
      '00281051': { vr: 'DS', Value: [350, 2000] },
      '00281052': { vr: 'DS', Value: [-1024] },
      '00281053': { vr: 'DS', Value: [1] },
      '00281056': { vr: 'CS', Value: ['SIGMOID'] },
    };
    const { module, options } = await renderAttributesOf(json, async () => undefined);
    expect(module).toMatchObject({ rows: 2, columns: 3, bitsStored: 12, highBit: 11, pixelRepresentation: 1 });
    expect(options.rescale).toEqual({ slope: 1, intercept: -1024 });
    expect(options.window).toEqual({ center: 40, width: 350, fn: 'SIGMOID' });
  });

  it('reads palette LUT data inline or from bulk data', async () => {
    const desc = { vr: 'US', Value: [2, 0, 16] };
    const json = {
      '00280004': { vr: 'CS', Value: ['PALETTE COLOR'] },
      '00280010': { vr: 'US', Value: [1] },
      '00280011': { vr: 'US', Value: [1] },
      '00280100': { vr: 'US', Value: [8] },
      '00281101': desc,
      '00281102': desc,
      '00281103': desc,
      '00281201': { vr: 'OW', InlineBinary: Buffer.from([0, 0, 0, 0xff]).toString('base64') },
      '00281202': { vr: 'OW', BulkDataURI: 'x' },
      '00281203': { vr: 'OW', InlineBinary: Buffer.from([0, 0, 0, 0x80]).toString('base64') },
    };
    const { options } = await renderAttributesOf(json, async (tag) => (tag === '00281202' ? Buffer.from([0, 0, 0, 0x40]) : undefined));
    expect(options.palette!.map((l) => [...(l.data as Uint16Array)])).toEqual([
      [0, 0xff00],
      [0, 0x4000],
      [0, 0x8000],
    ]);
  });

  it('parses window=center,width[,function] and refuses anything else', () => {
    expect(parseWindow('40,400')).toEqual({ center: 40, width: 400, fn: 'LINEAR' });
    expect(parseWindow('40,400,sigmoid')).toEqual({ center: 40, width: 400, fn: 'SIGMOID' });
    expect(() => parseWindow('40')).toThrow(expect.objectContaining({ status: 400 }));
    expect(() => parseWindow('40,400,CUBIC')).toThrow(expect.objectContaining({ status: 400 }));
  });
});
