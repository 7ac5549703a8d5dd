// Pixel codec throughput: decode and encode MB/s (of decoded pixels) per
// transfer syntax, through the worker pool as the server uses it.
// Usage: npx tsx bench/pixels.ts [--seconds 2] [--workers 2] [--concurrency 4]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  EXPLICIT_VR_BE,
  EXPLICIT_VR_LE,
  HTJ2K_LOSSLESS,
  J2K_LOSSLESS,
  JPEG_BASELINE,
  JPEG_LS_LOSSLESS,
  RLE_LOSSLESS,
} from '../server/dicom/transfer-syntax.js';
import { createPixelCodecs } from '../server/pixels/codecs.js';
import type { DecodedFrame, PixelCodecs, PixelModule } from '../server/pixels/types.js';

const { values: a } = parseArgs({
  options: { seconds: { type: 'string', default: '2' }, workers: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '4' } },
});
const seconds = Number(a.seconds);
const concurrency = Number(a.concurrency);

/** CT_small (128 × 128, 16-bit signed) enlarged to 512 × 512 by bilinear interpolation: a CT-like frame. */
function ctFrame(): DecodedFrame {
  const file = readFileSync(new URL('../test/fixtures/samples/CT_small.dcm', import.meta.url));
  const src = new Int16Array(file.buffer.slice(file.length - 128 * 128 * 2));
  const n = 512;
  const out = Buffer.alloc(n * n * 2);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const fx = Math.min(126.999, x / 4);
      const fy = Math.min(126.999, y / 4);
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      const tx = fx - x0;
      const ty = fy - y0;
      const v =
        (1 - ty) * ((1 - tx) * src[y0 * 128 + x0] + tx * src[y0 * 128 + x0 + 1]) +
        ty * ((1 - tx) * src[(y0 + 1) * 128 + x0] + tx * src[(y0 + 1) * 128 + x0 + 1]);
      out.writeInt16LE(Math.round(v), 2 * (y * n + x));
    }
  }
  const module: PixelModule = {
    rows: n,
    columns: n,
    samplesPerPixel: 1,
    bitsAllocated: 16,
    bitsStored: 16,
    highBit: 15,
    pixelRepresentation: 1,
    photometricInterpretation: 'MONOCHROME2',
    planarConfiguration: 0,
    numberOfFrames: 1,
  };
  return { module, pixels: out };
}

/** The CT frame's high byte as an 8-bit RGB frame with a colour gradient. */
function rgbFrame(ct: DecodedFrame): DecodedFrame {
  const n = ct.module.rows;
  const out = Buffer.alloc(n * n * 3);
  for (let i = 0; i < n * n; i++) {
    const g = Math.max(0, Math.min(255, (ct.pixels.readInt16LE(2 * i) + 1000) >> 3));
    out[3 * i] = g;
    out[3 * i + 1] = (g + (i % n)) & 255;
    out[3 * i + 2] = 255 - g;
  }
  return {
    module: { ...ct.module, samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8, highBit: 7, pixelRepresentation: 0, photometricInterpretation: 'RGB' },
    pixels: out,
  };
}

async function rate(fn: () => Promise<unknown>, bytes: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await fn();
        done++;
      }
    }),
  );
  return (done * bytes) / 1e6 / ((performance.now() - start) / 1000);
}

async function row(px: PixelCodecs, label: string, uid: string, frame: DecodedFrame): Promise<string[]> {
  if (uid !== EXPLICIT_VR_BE && !px.canEncode(uid, frame.module)) return [label, '-', '-', '-'];
  const enc = uid === EXPLICIT_VR_BE ? { bytes: Buffer.from(frame.pixels).swap16(), module: frame.module } : await px.encode(uid, frame);
  const ratio = (frame.pixels.length / enc.bytes.length).toFixed(2);
  const decode = await rate(() => px.decode(uid, enc.bytes, enc.module), frame.pixels.length);
  const encode = uid === EXPLICIT_VR_BE ? NaN : await rate(() => px.encode(uid, frame), frame.pixels.length);
  return [label, ratio, decode.toFixed(0), Number.isNaN(encode) ? '-' : encode.toFixed(0)];
}

const px = createPixelCodecs({ workers: Number(a.workers), inlineBytes: 0 });
const ct = ctFrame();
const rgb = rgbFrame(ct);
// Start the workers and their codecs before measuring.
for (const uid of [RLE_LOSSLESS, JPEG_LS_LOSSLESS, J2K_LOSSLESS, HTJ2K_LOSSLESS]) await px.encode(uid, ct);
await px.encode(JPEG_BASELINE, rgb);
const rows: string[][] = [['frame / syntax', 'ratio', 'decode MB/s', 'encode MB/s']];
for (const [name, frame] of [
  ['CT 512² 16-bit', ct],
  ['RGB 512² 8-bit', rgb],
] as const) {
  for (const [label, uid] of [
    ['Explicit VR LE', EXPLICIT_VR_LE],
    ['Explicit VR BE', EXPLICIT_VR_BE],
    ['RLE', RLE_LOSSLESS],
    ['JPEG-LS lossless', JPEG_LS_LOSSLESS],
    ['JPEG 2000 lossless', J2K_LOSSLESS],
    ['HTJ2K lossless', HTJ2K_LOSSLESS],
    ['JPEG Baseline q90', JPEG_BASELINE],
  ]) {
    if (uid === EXPLICIT_VR_BE && frame.module.bitsAllocated === 8) continue;
    rows.push(await row(px, `${name} ${label}`, uid, frame));
  }
}
await px.close();
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) console.log(r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  '));
console.log(`(${a.workers} workers, ${concurrency} frames in flight, ${seconds} s per figure, every frame through the pool)`);
