import { describe, expect, it } from 'vitest';
import { decodeRle, encodeRle } from '../../server/pixels/rle.js';
import { PixelError, type PixelModule } from '../../server/pixels/types.js';

// RLE Lossless (PS3.5 Annex G) against frames worked out by hand.

const mono8: PixelModule = {
  rows: 2,
  columns: 4,
  samplesPerPixel: 1,
  bitsAllocated: 8,
  bitsStored: 8,
  highBit: 7,
  pixelRepresentation: 0,
  photometricInterpretation: 'MONOCHROME2',
  planarConfiguration: 0,
  numberOfFrames: 1,
};

/** The 64-byte RLE header: segment count, then each segment's offset (PS3.5 §G.5). */
function header(...offsets: number[]): Buffer {
  const h = Buffer.alloc(64);
  h.writeUInt32LE(offsets.length, 0);
  for (const [i, o] of offsets.entries()) h.writeUInt32LE(o, 4 + 4 * i);
  return h;
}

describe('RLE Lossless', () => {
  it('encodes a small 8-bit frame row by row, replicate runs and literal runs, padded to even length', () => {
    // Row 1: 1 1 1 2 → replicate 3×1 (257-3 = 0xFE), literal [2] (0x00)
    // Row 2: 3 4 5 5 → literal [3 4] (0x01), replicate 2×5 (0xFF); 9 bytes, padded with a zero.
    const enc = encodeRle({ module: mono8, pixels: Buffer.from([1, 1, 1, 2, 3, 4, 5, 5]) });
    expect(enc.bytes.equals(Buffer.concat([header(64), Buffer.from([0xfe, 1, 0x00, 2, 0x01, 3, 4, 0xff, 5, 0x00])]))).toBe(true);
  });

  it('decodes the same hand-made frame', () => {
    const frame = Buffer.concat([header(64), Buffer.from([0xfe, 1, 0x00, 2, 0x01, 3, 4, 0xff, 5, 0x00])]);
    expect([...decodeRle(frame, mono8).pixels]).toEqual([1, 1, 1, 2, 3, 4, 5, 5]);
  });

  it('puts the first segment of a 16-bit sample in its most significant byte, and skips the no-op code -128', () => {
    const m = { ...mono8, rows: 1, columns: 2, bitsAllocated: 16, bitsStored: 16, highBit: 15 };
    // Pixels 0x0102 and 0x0304: high bytes [1 3], low bytes [2 4].
    const high = Buffer.from([0x80, 0x01, 1, 3]);
    const low = Buffer.from([0x01, 2, 4, 0x00]);
    const frame = Buffer.concat([header(64, 68), high, low]);
    const d = decodeRle(frame, m);
    expect(d.pixels.readUInt16LE(0)).toBe(0x0102);
    expect(d.pixels.readUInt16LE(2)).toBe(0x0304);
    expect(
      encodeRle({ module: m, pixels: d.pixels })
        .bytes.subarray(64)
        .equals(Buffer.from([0x01, 1, 3, 0x00, 0x01, 2, 4, 0x00])),
    ).toBe(true);
  });

  it('splits runs longer than 128 and rows wider than 128 literals', () => {
    const m = { ...mono8, rows: 1, columns: 300 };
    const pixels = Buffer.concat([Buffer.alloc(200, 9), Buffer.from(Array.from({ length: 100 }, (_, i) => i))]);
    const enc = encodeRle({ module: m, pixels });
    const body = enc.bytes.subarray(64);
    // 128 × 9, 72 × 9, then the 100 distinct values as one literal.
    expect([...body.subarray(0, 4)]).toEqual([257 - 128, 9, 257 - 72, 9]);
    expect(body[4]).toBe(99);
    expect(decodeRle(enc.bytes, m).pixels.equals(pixels)).toBe(true);
  });

  it('refuses a segment that decodes to fewer bytes than the frame needs', () => {
    const frame = Buffer.concat([header(64), Buffer.from([0xfe, 1])]);
    expect(() => decodeRle(frame, mono8)).toThrow(PixelError);
    expect(() => decodeRle(frame, mono8)).toThrow(/truncated/);
  });
});
