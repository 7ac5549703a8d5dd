import { bytesPerSample, corrupt } from './limits.js';
import type { DecodedFrame, PixelModule } from './types.js';

// Native pixel data (PS3.5 §8.1.1, §8.2): byte order, bit packing, planar
// configuration and YBR_FULL_422 subsampling turned into the one decoded
// form every other part of Cairn reads.

/**
 * Bytes of one stored native frame. 1-bit frames are packed (PS3.5 §8.1.1);
 * YBR_FULL_422 keeps two luminance and one pair of chrominance samples for
 * every two pixels of a row (PS3.3 §C.7.6.3.1.2).
 */
export function storedFrameBytes(m: PixelModule): number {
  if (m.bitsAllocated === 1) return Math.ceil((m.rows * m.columns * m.samplesPerPixel) / 8);
  const samples = m.photometricInterpretation === 'YBR_FULL_422' && m.samplesPerPixel === 3 ? 2 : m.samplesPerPixel;
  return m.rows * m.columns * samples * (m.bitsAllocated / 8);
}

/** Swaps each `width`-byte sample of `src` into a new buffer (big endian ↔ little endian). */
export function swapBytes(src: Uint8Array, width: number): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  if (width === 2) {
    for (let i = 0; i + 1 < src.length; i += 2) {
      out[i] = src[i + 1];
      out[i + 1] = src[i];
    }
  } else if (width === 4) {
    for (let i = 0; i + 3 < src.length; i += 4) {
      out[i] = src[i + 3];
      out[i + 1] = src[i + 2];
      out[i + 2] = src[i + 1];
      out[i + 3] = src[i];
    }
  } else {
    out.set(src);
  }
  return out;
}

/** PS3.5 §8.1.1: 1-bit pixels are packed eight to a byte, the first pixel in the least significant bit. */
export function unpackBits(src: Uint8Array, count: number): Buffer {
  const out = Buffer.allocUnsafe(count);
  for (let i = 0; i < count; i++) out[i] = (src[i >> 3] >> (i & 7)) & 1;
  return out;
}

/** Planar configuration 1 (R…R G…G B…B) to 0 (RGB RGB …), PS3.3 §C.7.6.3.1.3. */
export function planarToPixel(src: Uint8Array, pixels: number, samples: number, width: number): Buffer {
  const out = Buffer.allocUnsafe(pixels * samples * width);
  const plane = pixels * width;
  for (let s = 0; s < samples; s++) {
    for (let p = 0; p < pixels; p++) {
      const from = s * plane + p * width;
      const to = (p * samples + s) * width;
      for (let b = 0; b < width; b++) out[to + b] = src[from + b];
    }
  }
  return out;
}

/** YBR_FULL_422 (Y1 Y2 Cb Cr for each pair of pixels) to YBR_FULL (Y Cb Cr for each), PS3.3 §C.7.6.3.1.2. */
export function expandYbr422(src: Uint8Array, m: PixelModule): Buffer {
  const w = bytesPerSample(m);
  const pairs = Math.floor((m.rows * m.columns) / 2);
  const out = Buffer.alloc(m.rows * m.columns * 3 * w);
  for (let i = 0; i < pairs; i++) {
    const s = i * 4 * w;
    const d = i * 6 * w;
    for (let b = 0; b < w; b++) {
      const y1 = src[s + b];
      const y2 = src[s + w + b];
      const cb = src[s + 2 * w + b];
      const cr = src[s + 3 * w + b];
      out[d + b] = y1;
      out[d + w + b] = cb;
      out[d + 2 * w + b] = cr;
      out[d + 3 * w + b] = y2;
      out[d + 4 * w + b] = cb;
      out[d + 5 * w + b] = cr;
    }
  }
  return out;
}

/**
 * Decodes one native frame: the stored bytes in the stored byte order (a
 * frame longer than needed, padded to even length, is fine; a shorter one
 * is truncated data).
 */
export function decodeNative(frame: Uint8Array, m: PixelModule, bigEndian: boolean): DecodedFrame {
  const need = storedFrameBytes(m);
  if (frame.length < need) throw corrupt(`the frame holds ${frame.length} bytes where its image pixel module needs ${need}`);
  const data = frame.subarray(0, need);
  const pixels = m.rows * m.columns;
  if (m.bitsAllocated === 1) {
    // PS3.5 §8.2 / Annex D: big-endian OW swaps each 16-bit word, bits numbered from its least significant end.
    const packed = bigEndian && need % 2 === 0 ? swapBytes(data, 2) : data;
    const module = { ...m, bitsAllocated: 8, bitsStored: 1, highBit: 0 };
    const unpacked = unpackBits(packed, pixels * m.samplesPerPixel);
    return {
      module: { ...module, planarConfiguration: 0 },
      pixels: m.samplesPerPixel > 1 && m.planarConfiguration === 1 ? planarToPixel(unpacked, pixels, m.samplesPerPixel, 1) : unpacked,
    };
  }
  const width = m.bitsAllocated / 8;
  let out: Buffer = bigEndian ? swapBytes(data, width) : Buffer.from(data);
  let module: PixelModule = m;
  if (m.samplesPerPixel === 3 && m.photometricInterpretation === 'YBR_FULL_422') {
    out = expandYbr422(out, m);
    module = { ...module, photometricInterpretation: 'YBR_FULL' };
  } else if (m.samplesPerPixel > 1 && m.planarConfiguration === 1) {
    out = planarToPixel(out, pixels, m.samplesPerPixel, width);
  }
  return { module: { ...module, planarConfiguration: 0 }, pixels: out };
}
