import { afterAll, describe, expect, it } from 'vitest';
import { EXPLICIT_VR_LE, HTJ2K_LOSSLESS, J2K_LOSSLESS, JPEG_BASELINE, JPEG_LS_LOSSLESS, RLE_LOSSLESS } from '../../server/dicom/transfer-syntax.js';
import { createPixelCodecs } from '../../server/pixels/codecs.js';
import { PixelError, type DecodedFrame, type PixelModule } from '../../server/pixels/types.js';
import { sampleFrames } from './samples.js';

const pixels = createPixelCodecs({ workers: 2, inlineBytes: 0 });
afterAll(() => pixels.close());

const LOSSLESS = { 'Explicit VR LE': EXPLICIT_VR_LE, RLE: RLE_LOSSLESS, 'JPEG-LS': JPEG_LS_LOSSLESS, 'JPEG 2000': J2K_LOSSLESS, HTJ2K: HTJ2K_LOSSLESS };

const base: PixelModule = {
  rows: 37,
  columns: 53,
  samplesPerPixel: 1,
  bitsAllocated: 16,
  bitsStored: 12,
  highBit: 11,
  pixelRepresentation: 0,
  photometricInterpretation: 'MONOCHROME2',
  planarConfiguration: 0,
  numberOfFrames: 1,
};

/** A frame with smooth gradients, noise and flat runs, in the module's range. */
function synthetic(m: PixelModule): DecodedFrame {
  const n = m.rows * m.columns * m.samplesPerPixel;
  const out = Buffer.alloc(n * (m.bitsAllocated / 8));
  const lo = m.pixelRepresentation ? -(2 ** (m.bitsStored - 1)) : 0;
  const span = 2 ** m.bitsStored;
  let seed = 7;
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const p = Math.floor(i / m.samplesPerPixel);
    const flat = p % m.columns < 8;
    const v = flat ? lo : lo + ((p * 13 + (seed >>> 20)) % span);
    if (m.bitsAllocated === 8) out[i] = v;
    else out.writeInt16LE(v > 32767 ? v - 65536 : v, 2 * i);
  }
  return { module: m, pixels: out };
}

async function samples(): Promise<Record<string, DecodedFrame>> {
  const out: Record<string, DecodedFrame> = {};
  for (const [label, file] of [
    ['CT 16-bit signed', 'CT_small.dcm'],
    ['8-bit grey', 'chrGerm.dcm'],
    ['RGB', 'SC_rgb_rle_2frame.dcm'],
  ]) {
    const s = await sampleFrames(file);
    out[label] = await pixels.decode(s.transferSyntaxUid, s.frames[0], s.module);
  }
  out['12-bit unsigned'] = synthetic(base);
  out['12-bit signed'] = synthetic({ ...base, pixelRepresentation: 1 });
  out['16-bit unsigned'] = synthetic({ ...base, bitsStored: 16, highBit: 15 });
  out['8-bit RGB'] = synthetic({ ...base, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, highBit: 7, photometricInterpretation: 'RGB' });
  return out;
}

const frames = samples();

describe('lossless round trips', () => {
  for (const [target, uid] of Object.entries(LOSSLESS)) {
    it(`encodes every test frame as ${target} and decodes it back identical`, async () => {
      for (const [label, frame] of Object.entries(await frames)) {
        expect(pixels.canEncode(uid, frame.module), label).toBe(true);
        const enc = await pixels.encode(uid, frame);
        expect(enc.lossy, label).toBeUndefined();
        const dec = await pixels.decode(uid, enc.bytes, enc.module);
        expect(dec.pixels.equals(frame.pixels), `${target}: ${label}`).toBe(true);
        expect(dec.module.photometricInterpretation, label).toBe(frame.module.photometricInterpretation);
        // A real image compresses (the synthetic frames are mostly noise and need not).
        if (uid !== EXPLICIT_VR_LE && label === 'CT 16-bit signed') expect(enc.bytes.length).toBeLessThan(frame.pixels.length * 0.8);
      }
    });
  }

  it('labels RGB coded with the reversible colour transform YBR_RCT (PS3.5 §8.2.4)', async () => {
    const rgb = (await frames)['RGB'];
    const enc = await pixels.encode(J2K_LOSSLESS, rgb);
    expect(enc.module.photometricInterpretation).toBe('YBR_RCT');
    const dec = await pixels.decode(J2K_LOSSLESS, enc.bytes, enc.module);
    expect(dec.module.photometricInterpretation).toBe('RGB');
  });
});

describe('JPEG Baseline', () => {
  it('encodes 8-bit grey and RGB frames with a bounded error and says it was lossy', async () => {
    const all = await frames;
    for (const label of ['8-bit grey', 'RGB']) {
      const frame = all[label];
      const enc = await pixels.encode(JPEG_BASELINE, frame, { quality: 90 });
      expect(enc.lossy).toMatchObject({ method: 'ISO_10918_1' });
      expect(enc.lossy!.ratio).toBeGreaterThan(1);
      // ISO 10918-1 process 1: a baseline sequential frame header (SOF0), never progressive.
      expect(enc.bytes.includes(Buffer.from([0xff, 0xc0]))).toBe(true);
      expect(enc.bytes.includes(Buffer.from([0xff, 0xc2]))).toBe(false);
      const dec = await pixels.decode(JPEG_BASELINE, enc.bytes, enc.module);
      expect(dec.pixels.length).toBe(frame.pixels.length);
      let sum = 0;
      let max = 0;
      for (let i = 0; i < frame.pixels.length; i++) {
        const e = Math.abs(dec.pixels[i] - frame.pixels[i]);
        sum += e;
        max = Math.max(max, e);
      }
      expect(sum / frame.pixels.length, label).toBeLessThan(3);
      expect(max, label).toBeLessThan(64);
    }
  });

  it('labels the colour it codes YBR_FULL, and decodes that back to RGB', async () => {
    const enc = await pixels.encode(JPEG_BASELINE, (await frames)['RGB']);
    expect(enc.module.photometricInterpretation).toBe('YBR_FULL');
    const dec = await pixels.decode(JPEG_BASELINE, enc.bytes, enc.module);
    expect(dec.module.photometricInterpretation).toBe('RGB');
  });

  it('is not offered for 16-bit, signed or palette frames, and refuses them with 406', async () => {
    const all = await frames;
    expect(pixels.canEncode(JPEG_BASELINE, all['CT 16-bit signed'].module)).toBe(false);
    expect(pixels.canEncode(JPEG_BASELINE, { ...all['8-bit grey'].module, pixelRepresentation: 1 })).toBe(false);
    expect(pixels.canEncode(JPEG_BASELINE, { ...all['8-bit grey'].module, photometricInterpretation: 'PALETTE COLOR' })).toBe(false);
    const err = await pixels.encode(JPEG_BASELINE, all['CT 16-bit signed']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixelError);
    expect(err).toMatchObject({ status: 406, code: 'CannotEncode' });
  });
});

describe('what cannot be encoded', () => {
  it('says no to syntaxes without an encoder and to 32-bit frames outside native and RLE', async () => {
    const m = (await frames)['8-bit grey'].module;
    expect(pixels.canEncode('1.2.840.10008.1.2.4.91', m)).toBe(false);
    expect(pixels.canEncode('1.2.840.10008.1.2.4.100', m)).toBe(false);
    expect(pixels.canEncode('1.2.3.4', m)).toBe(false);
    const m32 = { ...m, bitsAllocated: 32, bitsStored: 32, highBit: 31 };
    expect(pixels.canEncode(RLE_LOSSLESS, m32)).toBe(true);
    expect(pixels.canEncode(J2K_LOSSLESS, m32)).toBe(false);
    expect(pixels.canEncode(JPEG_LS_LOSSLESS, m32)).toBe(false);
  });

  it('knows which stored syntaxes it can decode', () => {
    for (const uid of [
      EXPLICIT_VR_LE,
      RLE_LOSSLESS,
      JPEG_BASELINE,
      JPEG_LS_LOSSLESS,
      J2K_LOSSLESS,
      HTJ2K_LOSSLESS,
      '1.2.840.10008.1.2.4.70',
      '1.2.840.10008.1.2.4.203',
    ]) {
      expect(pixels.canDecode(uid), uid).toBe(true);
    }
    for (const uid of ['1.2.840.10008.1.2.4.100', '1.2.840.10008.1.2.4.94', '1.2.840.10008.1.2.4.110', '1.2.3.4'])
      expect(pixels.canDecode(uid), uid).toBe(false);
  });
});
