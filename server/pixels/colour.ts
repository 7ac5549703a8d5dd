import type { DecodedFrame } from './types.js';

/**
 * YBR_FULL to RGB (PS3.3 §C.7.6.3.1.2, the ITU-R BT.601 full-range
 * equations), for readers that show colour: decoding keeps YBR_FULL as
 * stored so that a lossless transcode stays lossless. Other frames are
 * returned unchanged.
 */
export function toRgb(frame: DecodedFrame): DecodedFrame {
  const m = frame.module;
  if (m.samplesPerPixel !== 3 || m.photometricInterpretation !== 'YBR_FULL') return frame;
  const wide = m.bitsAllocated > 8;
  const max = 2 ** m.bitsStored - 1;
  const mid = 2 ** (m.bitsStored - 1);
  const n = m.rows * m.columns;
  const out = Buffer.alloc(frame.pixels.length);
  const get = wide ? (i: number) => frame.pixels.readUInt16LE(2 * i) : (i: number) => frame.pixels[i];
  const set = wide ? (i: number, v: number) => out.writeUInt16LE(v, 2 * i) : (i: number, v: number) => (out[i] = v);
  const clamp = (v: number) => Math.max(0, Math.min(max, Math.round(v)));
  for (let p = 0; p < n; p++) {
    const y = get(3 * p);
    const cb = get(3 * p + 1) - mid;
    const cr = get(3 * p + 2) - mid;
    set(3 * p, clamp(y + 1.402 * cr));
    set(3 * p + 1, clamp(y - 0.344136 * cb - 0.714136 * cr));
    set(3 * p + 2, clamp(y + 1.772 * cb));
  }
  return { module: { ...m, photometricInterpretation: 'RGB' }, pixels: out };
}
