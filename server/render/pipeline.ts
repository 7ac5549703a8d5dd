import type { DecodedFrame, PixelModule } from '../pixels/types.js';
import { PixelError } from '../pixels/types.js';

// The grayscale and colour pipeline of PS3.3 §C.11 as pure functions over a
// decoded frame: no I/O and no imports beyond types, so a worker can run it.
// Stored value → Modality LUT (rescale or LUT) → VOI (window or LUT) →
// presentation (MONOCHROME1 inverted) → 8-bit; PALETTE COLOR through its
// three LUTs; RGB passed through; YBR_FULL converted to RGB.

/** A lookup table as PS3.3 §C.11.1.1.1 describes it: the first input value mapped, the bits of each entry, the entries. */
export interface Lut {
  firstMapped: number;
  bitsPerEntry: number;
  data: ArrayLike<number>;
}

/** PS3.3 §C.11.2.1.2: the VOI LUT Function of a window. */
export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

export interface Window {
  center: number;
  width: number;
  fn: VoiFunction;
}

/** What the pipeline needs beyond the pixel module. */
export interface RenderOptions {
  /** Rescale Slope and Intercept (PS3.3 §C.11.1.1.2); ignored when a modality LUT is given. */
  rescale?: { slope: number; intercept: number };
  modalityLut?: Lut;
  /** The window to apply: asked for, else the first stored one. */
  window?: Window;
  /** The first VOI LUT stored, used when no window is given. */
  voiLut?: Lut;
  /** Red, green and blue palette LUTs for PALETTE COLOR (PS3.3 §C.7.6.3.1.5). */
  palette?: [Lut, Lut, Lut];
}

/** 8-bit pixels ready to encode: one channel (grey) or three (RGB), colour-by-pixel. */
export interface RenderedPixels {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Buffer;
}

/** Renders one decoded frame to 8-bit display values. Throws PixelError for what cannot be rendered. */
export function renderFrame(frame: DecodedFrame, options: RenderOptions = {}): RenderedPixels {
  const m = frame.module;
  const count = m.rows * m.columns;
  const bytesPer = m.bitsAllocated / 8;
  if (![8, 16, 32].includes(m.bitsAllocated)) throw unsupported(`Bits Allocated ${m.bitsAllocated}`);
  if (frame.pixels.length < count * m.samplesPerPixel * bytesPer)
    throw new PixelError(422, 'PixelDataTruncated', `the frame holds ${frame.pixels.length} bytes, fewer than its ${m.rows}×${m.columns} pixels need`);
  const pi = m.photometricInterpretation.trim().toUpperCase();
  if (pi === 'MONOCHROME1' || pi === 'MONOCHROME2') return grey(frame, options, pi === 'MONOCHROME1');
  if (pi === 'PALETTE COLOR') return palette(frame, options);
  if (m.samplesPerPixel === 3 && (pi === 'RGB' || pi === 'YBR_FULL')) return colour(frame, pi);
  throw unsupported(`Photometric Interpretation ${pi} with ${m.samplesPerPixel} samples`);
}

function unsupported(what: string): PixelError {
  return new PixelError(422, 'RenderingNotSupported', `${what} cannot be rendered`);
}

/** Reads stored values as the pixel module says: bits outside Bits Stored dropped, sign extended (PS3.5 §8.1.1). */
function storedValues(frame: DecodedFrame, sample = 0, samples = 1): (i: number) => number {
  const m = frame.module;
  const p = frame.pixels;
  const shift = Math.max(0, m.highBit + 1 - m.bitsStored);
  const bits = m.bitsStored;
  const signed = m.pixelRepresentation === 1;
  const bytes = m.bitsAllocated / 8;
  const read =
    bytes === 1
      ? (i: number) => p[i * samples + sample]
      : bytes === 2
        ? (i: number) => p.readUInt16LE((i * samples + sample) * 2)
        : (i: number) => p.readUInt32LE((i * samples + sample) * 4);
  if (bits >= 32) return signed ? (i) => read(i) | 0 : read;
  const mask = 2 ** bits;
  const half = mask / 2;
  return (i) => {
    const v = Math.floor(read(i) / 2 ** shift) % mask;
    return signed && v >= half ? v - mask : v;
  };
}

/** The range of stored values a module can hold. */
function storedRange(m: PixelModule): [number, number] {
  const bits = Math.min(m.bitsStored, 32);
  return m.pixelRepresentation === 1 ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
}

function lookUp(lut: Lut, x: number): number {
  const i = Math.round(x) - lut.firstMapped;
  return lut.data[i < 0 ? 0 : i >= lut.data.length ? lut.data.length - 1 : i];
}

/** PS3.3 §C.11.2.1.2.1 (LINEAR), §C.11.2.1.3.2 (LINEAR_EXACT), §C.11.2.1.3.1 (SIGMOID), output in [0, 255]. */
export function applyWindow(x: number, w: Window): number {
  const { center: c, width } = w;
  if (w.fn === 'SIGMOID') return 255 / (1 + Math.exp((-4 * (x - c)) / width));
  if (w.fn === 'LINEAR_EXACT') {
    if (x <= c - width / 2) return 0;
    if (x > c + width / 2) return 255;
    return ((x - c) / width + 0.5) * 255;
  }
  if (x <= c - 0.5 - (width - 1) / 2) return 0;
  if (x > c - 0.5 + (width - 1) / 2) return 255;
  return ((x - (c - 0.5)) / (width - 1) + 0.5) * 255;
}

/** Whether a window can be applied with its function (PS3.3 §C.11.2.1.2: LINEAR needs width ≥ 1, the others > 0). */
export function windowProblem(w: Window): string | undefined {
  if (!Number.isFinite(w.center) || !Number.isFinite(w.width)) return 'window center and width must be numbers';
  if (w.fn === 'LINEAR' ? w.width < 1 : w.width <= 0) return `window width ${w.width} is out of range for ${w.fn}`;
  return undefined;
}

function grey(frame: DecodedFrame, o: RenderOptions, invert: boolean): RenderedPixels {
  const m = frame.module;
  const count = m.rows * m.columns;
  const modality = o.modalityLut
    ? (s: number) => lookUp(o.modalityLut!, s)
    : o.rescale
      ? (s: number) => s * o.rescale!.slope + o.rescale!.intercept
      : (s: number) => s;
  const indexed = m.bitsStored <= 16 && m.bitsAllocated <= 16 ? storedSource(frame) : undefined;
  const [min, max] = storedRange(m);
  let voi: (x: number) => number;
  if (o.window) {
    const w = o.window;
    voi = (x) => applyWindow(x, w);
  } else if (o.voiLut) {
    const lut = o.voiLut;
    const top = 2 ** lut.bitsPerEntry - 1;
    voi = (x) => (lookUp(lut, x) / top) * 255;
  } else {
    // No window stored or asked: the range of this frame's values fills the output.
    let lo = Infinity;
    let hi = -Infinity;
    const note = (s: number) => {
      const v = modality(s);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    };
    if (indexed) {
      const seen = new Uint8Array(max - min + 1);
      const { src, shift, mask, flip } = indexed;
      for (let i = 0; i < count; i++) seen[((src[i] >> shift) & mask) ^ flip] = 1;
      for (let k = 0; k < seen.length; k++) if (seen[k]) note(k + min);
    } else {
      const value = storedValues(frame);
      for (let i = 0; i < count; i++) note(value(i));
    }
    voi = hi > lo ? (x) => ((x - lo) / (hi - lo)) * 255 : () => 128;
  }
  const display = (s: number) => {
    const c = Math.max(0, Math.min(255, Math.round(voi(modality(s)))));
    return invert ? 255 - c : c;
  };
  const out = Buffer.allocUnsafe(count);
  if (indexed) {
    // One table entry per possible stored value: the per-pixel work is a lookup.
    const table = new Uint8Array(max - min + 1);
    for (let s = min; s <= max; s++) table[s - min] = display(s);
    const { src, shift, mask, flip } = indexed;
    for (let i = 0; i < count; i++) out[i] = table[((src[i] >> shift) & mask) ^ flip];
  } else {
    const value = storedValues(frame);
    for (let i = 0; i < count; i++) out[i] = display(value(i));
  }
  return { width: m.columns, height: m.rows, channels: 1, data: out };
}

/**
 * Each pixel's stored value as an index from the lowest value the module can
 * hold, for data of at most 16 bits: ((sample >> shift) & mask) ^ flip drops
 * the bits outside Bits Stored and, for two's complement, flips the sign bit,
 * which is value − min. Read in place, without a copy of the frame.
 */
function storedSource(frame: DecodedFrame): { src: Uint16Array | Uint8Array; shift: number; mask: number; flip: number } {
  const m = frame.module;
  const count = m.rows * m.columns;
  const p = frame.pixels;
  const shift = Math.max(0, m.highBit + 1 - m.bitsStored);
  const mask = 2 ** m.bitsStored - 1;
  const flip = m.pixelRepresentation === 1 ? 2 ** (m.bitsStored - 1) : 0;
  let src: Uint16Array | Uint8Array;
  if (m.bitsAllocated === 8) src = new Uint8Array(p.buffer, p.byteOffset, count);
  else if (p.byteOffset % 2 === 0) src = new Uint16Array(p.buffer, p.byteOffset, count);
  else src = new Uint16Array(new Uint8Array(p.subarray(0, count * 2)).buffer);
  return { src, shift, mask, flip };
}

/** PS3.3 §C.7.6.3.1.5: each stored value indexes the red, green and blue tables; entries scaled to 8 bits. */
function palette(frame: DecodedFrame, o: RenderOptions): RenderedPixels {
  const m = frame.module;
  if (!o.palette) throw new PixelError(422, 'PaletteMissing', 'a PALETTE COLOR image needs its palette color lookup tables');
  if (m.samplesPerPixel !== 1) throw unsupported(`PALETTE COLOR with ${m.samplesPerPixel} samples`);
  const count = m.rows * m.columns;
  const value = storedValues(frame);
  const out = Buffer.allocUnsafe(count * 3);
  const tables = o.palette.map((lut) => {
    const shift = Math.max(0, lut.bitsPerEntry - 8);
    return (s: number) => Math.floor(lookUp(lut, s) / 2 ** shift) & 0xff;
  });
  for (let i = 0; i < count; i++) {
    const s = value(i);
    out[i * 3] = tables[0](s);
    out[i * 3 + 1] = tables[1](s);
    out[i * 3 + 2] = tables[2](s);
  }
  return { width: m.columns, height: m.rows, channels: 3, data: out };
}

/** RGB as stored (scaled to 8 bits); YBR_FULL to RGB by PS3.3 §C.7.6.3.1.2. */
function colour(frame: DecodedFrame, pi: string): RenderedPixels {
  const m = frame.module;
  const count = m.rows * m.columns;
  const out = Buffer.allocUnsafe(count * 3);
  if (m.bitsAllocated === 8 && m.bitsStored === 8 && pi === 'RGB') {
    frame.pixels.copy(out, 0, 0, count * 3);
  } else {
    const samples = [0, 1, 2].map((k) => storedValues(frame, k, 3));
    const shift = Math.max(0, m.bitsStored - 8);
    for (let i = 0; i < count; i++) for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.floor(samples[k](i) / 2 ** shift);
  }
  if (pi === 'YBR_FULL') {
    for (let i = 0; i < count * 3; i += 3) {
      const y = out[i];
      const cb = out[i + 1] - 128;
      const cr = out[i + 2] - 128;
      out[i] = clamp(y + 1.402 * cr);
      out[i + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
      out[i + 2] = clamp(y + 1.772 * cb);
    }
  }
  return { width: m.columns, height: m.rows, channels: 3, data: out };
}

function clamp(v: number): number {
  const r = Math.round(v);
  return Math.max(0, Math.min(255, r));
}
