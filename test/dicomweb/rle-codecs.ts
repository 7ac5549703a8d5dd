import sharp from 'sharp';
import { type DecodedFrame, type EncodedFrame, type PixelCodecs, PixelError, type PixelModule } from '../../server/pixels/types.js';

// A PixelCodecs of RLE Lossless (PS3.5 Annex G, both ways) and JPEG
// Baseline 8-bit (encoding only, by sharp), in-process, for the tests of the
// bytes seam's decode and encode paths; what they make is checked against
// DCMTK's dcmdrle and dcmdjpeg in the transcode tests.

const RLE = '1.2.840.10008.1.2.5';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';

function segmentsOf(m: PixelModule): number {
  return m.samplesPerPixel * (m.bitsAllocated / 8);
}

function unpack(src: Buffer, out: Buffer): void {
  let i = 0;
  let o = 0;
  while (i < src.length && o < out.length) {
    const n = src.readInt8(i++);
    if (n >= 0) {
      src.copy(out, o, i, i + n + 1);
      i += n + 1;
      o += n + 1;
    } else if (n !== -128) {
      out.fill(src[i++], o, Math.min(out.length, o - n + 1));
      o += -n + 1;
    }
  }
  if (o < out.length) throw new PixelError(422, 'BadRle', 'an RLE segment ends early');
}

function pack(row: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < row.length) {
    let run = 1;
    while (i + run < row.length && run < 128 && row[i + run] === row[i]) run++;
    if (run >= 2) {
      out.push(Buffer.from([(257 - run) & 0xff, row[i]]));
      i += run;
      continue;
    }
    let lit = 1;
    while (i + lit < row.length && lit < 128 && !(i + lit + 1 < row.length && row[i + lit] === row[i + lit + 1])) lit++;
    out.push(Buffer.from([lit - 1]), row.subarray(i, i + lit));
    i += lit;
  }
  return out;
}

export const rleCodecs: PixelCodecs = {
  canDecode: (ts) => ts === RLE,
  canEncode: (ts, m) =>
    (ts === RLE && [8, 16].includes(m.bitsAllocated)) || (ts === JPEG_BASELINE && m.bitsAllocated === 8 && m.photometricInterpretation === 'MONOCHROME2'),
  async decode(_ts, frame, module): Promise<DecodedFrame> {
    const n = segmentsOf(module);
    const bytes = module.bitsAllocated / 8;
    const pixels = module.rows * module.columns;
    if (frame.length < 64 || frame.readUInt32LE(0) !== n) throw new PixelError(422, 'BadRle', 'the RLE header does not match the pixel module');
    const out = Buffer.alloc(pixels * n);
    for (let s = 0; s < n; s++) {
      const start = frame.readUInt32LE(4 + s * 4);
      const end = s + 1 < n ? frame.readUInt32LE(8 + s * 4) : frame.length;
      const seg = Buffer.alloc(pixels);
      unpack(frame.subarray(start, end), seg);
      // Segment s holds byte (bytes - 1 - s % bytes) of sample s / bytes: most significant first.
      const sample = Math.floor(s / bytes);
      const byte = bytes - 1 - (s % bytes);
      for (let p = 0; p < pixels; p++) out[(p * module.samplesPerPixel + sample) * bytes + byte] = seg[p];
    }
    return { module: { ...module, planarConfiguration: 0 }, pixels: out };
  },
  async encode(ts, frame): Promise<EncodedFrame> {
    const m = frame.module;
    if (ts === JPEG_BASELINE) {
      const bytes = await sharp(frame.pixels, { raw: { width: m.columns, height: m.rows, channels: 1 } })
        .toColourspace('b-w')
        .jpeg({ quality: 90 })
        .toBuffer();
      return { bytes, module: m, lossy: { ratio: frame.pixels.length / bytes.length, method: 'ISO_10918_1' } };
    }
    const n = segmentsOf(m);
    const bytes = m.bitsAllocated / 8;
    const segments: Buffer[] = [];
    for (let s = 0; s < n; s++) {
      const sample = Math.floor(s / bytes);
      const byte = bytes - 1 - (s % bytes);
      const parts: Buffer[] = [];
      for (let r = 0; r < m.rows; r++) {
        const row = Buffer.alloc(m.columns);
        for (let c = 0; c < m.columns; c++) row[c] = frame.pixels[((r * m.columns + c) * m.samplesPerPixel + sample) * bytes + byte];
        parts.push(...pack(row));
      }
      let seg = Buffer.concat(parts);
      if (seg.length % 2) seg = Buffer.concat([seg, Buffer.from([0x80])]);
      segments.push(seg);
    }
    const header = Buffer.alloc(64);
    header.writeUInt32LE(n, 0);
    let offset = 64;
    segments.forEach((seg, i) => {
      header.writeUInt32LE(offset, 4 + i * 4);
      offset += seg.length;
    });
    return { bytes: Buffer.concat([header, ...segments]), module: m };
  },
  async close() {},
};
