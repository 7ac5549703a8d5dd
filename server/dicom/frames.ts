import type { ByteSpan, PixelData } from './scan.js';

/** Each frame as the byte spans of the blob that hold it. */
export type FrameMap = ByteSpan[][];

export interface ImageGeometry {
  rows?: number;
  columns?: number;
  samplesPerPixel?: number;
  bitsAllocated?: number;
  numberOfFrames?: number;
  photometricInterpretation?: string;
}

/**
 * Samples stored per pixel in a native frame: YBR_FULL_422 and YBR_PARTIAL_422
 * keep Y1 Y2 Cb Cr for every two pixels of a row, two samples a pixel, though
 * Samples per Pixel is 3 (PS3.3 §C.7.6.3.1.2, PS3.5 §8.2.1 for native data).
 */
function storedSamples(g: ImageGeometry): number {
  const samples = g.samplesPerPixel ?? 1;
  return samples === 3 && /^YBR_(FULL|PARTIAL)_422$/.test(g.photometricInterpretation ?? '') ? 2 : samples;
}

/**
 * Splits pixel data into frames. Native (PS3.5 §8.1.1): frames are
 * consecutive, rows × columns × stored samples × bits/8 bytes each (one frame
 * of packed bits may end inside a byte, PS3.5 §8.1.1). Encapsulated
 * (PS3.5 §A.4): the Basic Offset Table decides when present; otherwise one
 * fragment per frame when counts agree, else a frame starts at each fragment
 * opening with a codestream start marker. Returns null when frames cannot be
 * located (bit-packed frames that are not byte aligned).
 */
export function mapFrames(pd: PixelData, g: ImageGeometry): FrameMap | null {
  const frames = Math.max(1, g.numberOfFrames ?? 1);
  if (!pd.encapsulated) {
    const { rows = 0, columns = 0, bitsAllocated = 16 } = g;
    const bits = rows * columns * storedSamples(g) * bitsAllocated;
    if (!bits || (bits % 8 && frames > 1)) return null;
    const size = Math.ceil(bits / 8);
    const v = pd.fragments[0];
    if (size * frames > v.length) return null;
    return Array.from({ length: frames }, (_, i) => [{ offset: v.offset + i * size, length: size }]);
  }
  const frags = pd.fragments;
  if (!frags.length) return null;
  if (frames === 1) return [frags];
  if (pd.offsetTable.length === frames) {
    // Offsets count from the first byte of the first fragment's item tag.
    const starts = pd.offsetTable.map((o) => pd.firstItem + o);
    return starts.map((s, i) => {
      const e = i + 1 < starts.length ? starts[i + 1] : Infinity;
      return frags.filter((f) => f.offset - 8 >= s && f.offset - 8 < e);
    });
  }
  if (frags.length === frames) return frags.map((f) => [f]);
  const out: FrameMap = [];
  frags.forEach((f, i) => {
    if (!out.length || startsCodestream(pd.heads[i])) out.push([f]);
    else out[out.length - 1].push(f);
  });
  return out.length === frames ? out : null;
}

function startsCodestream(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xd8) return true; // JPEG SOI
  if (head.length >= 4 && head.readUInt32BE(0) === 0xff4fff51) return true; // J2K SOC+SIZ
  if (head.length >= 8 && head.toString('latin1', 4, 8) === 'jP  ') return true; // JP2 signature box
  return false;
}
