import { EXPLICIT_VR_LE, HTJ2K_LOSSLESS, J2K_LOSSLESS, JPEG_BASELINE, JPEG_LS_LOSSLESS, RLE_LOSSLESS } from '../dicom/transfer-syntax.js';
import { j2kUsesMct, readJpegHeader } from './headers.js';
import { bytesPerSample, checkModule, decodedFrameBytes, type PixelLimits } from './limits.js';
import { encodeRle } from './rle.js';
import { PixelError, type DecodedFrame, type EncodedFrame, type PixelModule } from './types.js';
import { codecModule, dropCodecModule, using, type CodecModules, type FrameInfo, type WasmEncoder } from './wasm.js';

// Encoding a decoded frame in one of the transfer syntaxes Cairn can make:
// Explicit VR Little Endian, RLE Lossless, JPEG-LS lossless, JPEG 2000
// lossless, High-Throughput JPEG 2000 lossless and (8-bit only) JPEG Baseline.

const COLOUR = ['RGB', 'YBR_FULL'];
const GREY = ['MONOCHROME1', 'MONOCHROME2'];

/** Whether a frame of module `m` can be encoded in `uid` (the same answer the encoder gives). */
export function canEncodeModule(uid: string, m: PixelModule): boolean {
  const samplesOk = m.samplesPerPixel === 1 || (m.samplesPerPixel === 3 && m.planarConfiguration === 0);
  if (!samplesOk || ![8, 16, 32].includes(m.bitsAllocated) || m.bitsStored > m.bitsAllocated || m.bitsStored < 1) return false;
  if (m.photometricInterpretation === 'YBR_FULL_422') return false;
  if (uid === EXPLICIT_VR_LE || uid === RLE_LOSSLESS) return true;
  const photometricOk =
    m.samplesPerPixel === 1 ? [...GREY, 'PALETTE COLOR'].includes(m.photometricInterpretation) : COLOUR.includes(m.photometricInterpretation);
  if (!photometricOk || m.bitsAllocated === 32) return false;
  if (uid === JPEG_LS_LOSSLESS) return m.bitsStored >= 2;
  if (uid === J2K_LOSSLESS || uid === HTJ2K_LOSSLESS) return true;
  // JPEG Baseline (process 1) codes 8-bit unsigned samples only (ISO 10918-1 §4.11); a palette index must never be lossy.
  if (uid === JPEG_BASELINE)
    return m.bitsAllocated === 8 && m.bitsStored === 8 && m.pixelRepresentation === 0 && m.photometricInterpretation !== 'PALETTE COLOR';
  return false;
}

/** Encodes one decoded frame; every failure is a PixelError. */
export async function encodeFrame(uid: string, frame: DecodedFrame, limits: PixelLimits, quality = 90): Promise<EncodedFrame> {
  const m = frame.module;
  checkModule(m, limits);
  if (!canEncodeModule(uid, m)) {
    throw new PixelError(
      406,
      'CannotEncode',
      `frames of ${m.samplesPerPixel} × ${m.bitsAllocated}-bit ${m.photometricInterpretation} pixels cannot be encoded in transfer syntax ${uid}`,
    );
  }
  const need = decodedFrameBytes(m);
  if (frame.pixels.length < need) throw new PixelError(422, 'CorruptPixelData', `the frame holds ${frame.pixels.length} bytes where its module needs ${need}`);
  const pixels = frame.pixels.subarray(0, need);
  if (uid === EXPLICIT_VR_LE) return { bytes: Buffer.from(pixels), module: m };
  if (uid === RLE_LOSSLESS) return encodeRle({ module: m, pixels: Buffer.from(pixels) });
  if (uid === JPEG_LS_LOSSLESS) return encodeJpegLs(pixels, m);
  if (uid === J2K_LOSSLESS || uid === HTJ2K_LOSSLESS) return encodeJ2k(uid === J2K_LOSSLESS ? 'j2k' : 'htj2k', pixels, m);
  return encodeJpegBaseline(pixels, m, quality);
}

function info(m: PixelModule, bits: number): FrameInfo {
  return { width: m.columns, height: m.rows, bitsPerSample: bits, componentCount: m.samplesPerPixel, isSigned: m.pixelRepresentation === 1 };
}

/** Samples masked to their stored bits: JPEG-LS codes unsigned numbers of a given precision (ISO 14495-1 §C.2.2). */
function masked(pixels: Uint8Array, m: PixelModule): Uint8Array {
  if (m.bitsStored === m.bitsAllocated) return pixels;
  const out = Buffer.from(pixels);
  const mask = (1 << m.bitsStored) - 1;
  if (bytesPerSample(m) === 1) for (let i = 0; i < out.length; i++) out[i] &= mask;
  else for (let i = 0; i < out.length; i += 2) out.writeUInt16LE(out.readUInt16LE(i) & mask, i);
  return out;
}

async function run(
  name: keyof CodecModules,
  what: string,
  make: (mod: CodecModules[typeof name]) => WasmEncoder,
  fill: (e: WasmEncoder) => void,
): Promise<Buffer> {
  const mod = await codecModule(name);
  try {
    return using(make(mod), (e) => {
      fill(e);
      e.encode();
      return Buffer.from(e.getEncodedBuffer());
    });
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) dropCodecModule(name);
    throw new PixelError(422, 'EncodeFailed', `the ${what} encoder failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function encodeJpegLs(pixels: Uint8Array, m: PixelModule): Promise<EncodedFrame> {
  const data = masked(pixels, m);
  const bytes = await run(
    'jpegls',
    'JPEG-LS',
    (mod) => new (mod as CodecModules['jpegls']).JpegLSEncoder(),
    (e) => {
      e.getDecodedBuffer({ ...info(m, m.bitsStored), isSigned: false }).set(data);
      e.setNearLossless?.(0);
      // Interleave mode "sample" (2) codes colour-by-pixel data as it lies (ISO 14495-1 §C.2.3).
      e.setInterleaveMode?.(m.samplesPerPixel > 1 ? 2 : 0);
    },
  );
  return { bytes, module: m };
}

async function encodeJ2k(name: 'j2k' | 'htj2k', pixels: Uint8Array, m: PixelModule): Promise<EncodedFrame> {
  const bits = m.bitsStored;
  const bytes = await run(
    name,
    name === 'j2k' ? 'JPEG 2000' : 'HTJ2K',
    (mod) => (name === 'j2k' ? new (mod as CodecModules['j2k']).J2KEncoder() : new (mod as CodecModules['htj2k']).HTJ2KEncoder()),
    (e) => {
      const colour = m.samplesPerPixel === 3 && m.photometricInterpretation === 'RGB';
      e.getDecodedBuffer({ ...info(m, bits), isUsingColorTransform: colour }).set(pixels);
      e.setQuality?.(true, 0);
    },
  );
  // PS3.5 §8.2.4: RGB coded with the reversible component transform is labelled YBR_RCT.
  const rct = m.samplesPerPixel === 3 && j2kUsesMct(bytes);
  return { bytes, module: rct ? { ...m, photometricInterpretation: 'YBR_RCT' } : m };
}

async function encodeJpegBaseline(pixels: Uint8Array, m: PixelModule, quality: number): Promise<EncodedFrame> {
  const q = Math.max(1, Math.min(100, Math.round(quality)));
  const bytes = await run(
    'jpeg',
    'JPEG',
    (mod) => new (mod as CodecModules['jpeg']).JPEGEncoder(),
    (e) => {
      e.getDecodedBuffer(info(m, 8)).set(pixels);
      // Process 1 is sequential (ISO 10918-1 §4.11): never progressive.
      e.setProgressive?.(false);
      e.setQuality?.(q);
    },
  );
  let module = m;
  if (m.samplesPerPixel === 3) {
    // libjpeg-turbo codes colour as YCbCr (JFIF); PS3.5 §8.2.1 names it by its subsampling.
    const h = readJpegHeader(bytes);
    module = { ...m, photometricInterpretation: !h.sampling || (h.sampling[0] === 1 && h.sampling[1] === 1) ? 'YBR_FULL' : 'YBR_FULL_422' };
  }
  const ratio = Math.round((pixels.length / bytes.length) * 100) / 100;
  return { bytes, module: { ...module, bitsStored: 8, highBit: 7 }, lossy: { ratio, method: 'ISO_10918_1' } };
}
