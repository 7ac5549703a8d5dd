import { bytesPerSample, corrupt } from './limits.js';
import type { DecodedFrame, EncodedFrame, PixelModule } from './types.js';

// RLE Lossless (PS3.5 Annex G). A frame is a 64-byte header (the number of
// segments and up to 15 segment offsets, little endian) and one segment per
// byte of each sample: sample by sample, most significant byte first, each
// segment the PackBits coding of that byte of every pixel, row by row.

const HEADER = 64;

/** Decodes one RLE frame into little-endian, colour-by-pixel samples. */
export function decodeRle(frame: Uint8Array, m: PixelModule): DecodedFrame {
  const width = bytesPerSample(m);
  if (m.bitsAllocated === 1) throw corrupt('RLE Lossless frames of 1-bit pixels are not supported');
  const segments = m.samplesPerPixel * width;
  if (frame.length < HEADER) throw corrupt(`the RLE frame is ${frame.length} bytes, shorter than its 64-byte header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const count = view.getUint32(0, true);
  if (count !== segments)
    throw corrupt(`the RLE header lists ${count} segments where ${m.samplesPerPixel} samples of ${m.bitsAllocated} bits need ${segments}`);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) offsets.push(view.getUint32(4 + 4 * i, true));
  const pixels = m.rows * m.columns;
  const out = Buffer.alloc(pixels * segments);
  for (let i = 0; i < count; i++) {
    const start = offsets[i];
    const end = i + 1 < count ? offsets[i + 1] : frame.length;
    if (start < HEADER || end > frame.length || end < start)
      throw corrupt(`RLE segment ${i + 1} lies outside the frame (offset ${start}, frame ${frame.length} bytes)`);
    const sample = Math.floor(i / width);
    // Segment 0 of a sample is its most significant byte (PS3.5 §G.2), the last byte of a little-endian sample.
    const byte = width - 1 - (i % width);
    unpackSegment(frame, start, end, out, sample * width + byte, segments, pixels, i + 1);
  }
  return { module: { ...m, planarConfiguration: 0 }, pixels: out };
}

/** PackBits (PS3.5 §G.3.1) from frame[start, end) into every `stride`-th byte of out, from `first`. */
function unpackSegment(src: Uint8Array, start: number, end: number, out: Buffer, first: number, stride: number, count: number, n: number): void {
  let i = start;
  let o = 0;
  while (o < count && i < end) {
    const h = src[i++];
    if (h < 128) {
      const len = h + 1;
      if (i + len > end) throw corrupt(`RLE segment ${n} ends inside a literal run`);
      const take = Math.min(len, count - o);
      for (let k = 0; k < take; k++) out[first + (o + k) * stride] = src[i + k];
      i += len;
      o += take;
    } else if (h > 128) {
      if (i >= end) throw corrupt(`RLE segment ${n} ends inside a replicate run`);
      const v = src[i++];
      const take = Math.min(257 - h, count - o);
      for (let k = 0; k < take; k++) out[first + (o + k) * stride] = v;
      o += take;
    }
  }
  if (o < count) throw corrupt(`RLE segment ${n} decodes to ${o} bytes where the frame needs ${count}: the data is truncated`);
}

/** Encodes a decoded frame as RLE Lossless (PS3.5 Annex G), each row coded separately (§G.3.1). */
export function encodeRle(frame: DecodedFrame): EncodedFrame {
  const m = frame.module;
  const width = bytesPerSample(m);
  const segments = m.samplesPerPixel * width;
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let at = HEADER;
  const row = Buffer.allocUnsafe(m.columns);
  const scratch = Buffer.allocUnsafe(m.columns * 2 + 2);
  for (let seg = 0; seg < segments; seg++) {
    const sample = Math.floor(seg / width);
    const byte = width - 1 - (seg % width);
    const stride = segments;
    const chunks: Buffer[] = [];
    let len = 0;
    for (let r = 0; r < m.rows; r++) {
      const base = r * m.columns;
      for (let c = 0; c < m.columns; c++) row[c] = frame.pixels[(base + c) * stride + sample * width + byte];
      const n = packRow(row, scratch);
      chunks.push(Buffer.from(scratch.subarray(0, n)));
      len += n;
    }
    // PS3.5 §G.5: an odd-length segment is padded at its end with zero.
    if (len % 2) {
      chunks.push(Buffer.alloc(1));
      len += 1;
    }
    offsets.push(at);
    at += len;
    parts.push(...chunks);
  }
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(segments, 0);
  for (const [i, o] of offsets.entries()) header.writeUInt32LE(o, 4 + 4 * i);
  return { bytes: Buffer.concat([header, ...parts]), module: { ...m, planarConfiguration: 0 } };
}

/** PackBits one row: runs of 2+ equal bytes (up to 128) replicate, the rest go as literals (up to 128). */
function packRow(row: Buffer, out: Buffer): number {
  let o = 0;
  let i = 0;
  const n = row.length;
  while (i < n) {
    let run = 1;
    while (i + run < n && run < 128 && row[i + run] === row[i]) run++;
    if (run >= 2) {
      out[o++] = 257 - run;
      out[o++] = row[i];
      i += run;
      continue;
    }
    const start = i;
    while (i < n && i - start < 128 && !(i + 1 < n && row[i + 1] === row[i])) i++;
    if (i === start) i++;
    out[o++] = i - start - 1;
    for (let k = start; k < i; k++) out[o++] = row[k];
  }
  return o;
}
