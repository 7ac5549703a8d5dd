import { mapFrames } from './dicom/frames.js';
import {
  LOSSY_IMAGE_COMPRESSION,
  LOSSY_IMAGE_COMPRESSION_METHOD,
  LOSSY_IMAGE_COMPRESSION_RATIO,
  MAX_VALUE_LENGTH,
  openPart10,
  type Part10,
  PHOTOMETRIC_INTERPRETATION,
  PLANAR_CONFIGURATION,
  pixelFacts,
  type PixelFacts,
  RewriteError,
  rewritePart10,
  textValue,
} from './dicom/rewrite.js';
import { Tag } from './dicom/tags.js';
import { EXPLICIT_VR_LE, transferSyntax, type TransferSyntax } from './dicom/transfer-syntax.js';
import { ApiError } from './errors.js';
import { type DecodedFrame, type EncodedFrame, type PixelCodecs, PixelError, type PixelModule } from './pixels/types.js';

// Making other bytes of stored ones, for the bytes seam (retrieve.ts): a
// whole instance in another transfer syntax, and single frames as native
// little-endian pixels or encoded in another syntax. Headers are rewritten
// here (server/dicom/rewrite.ts, cheap); pixels are decoded and encoded by
// the codec pool (deps.pixels), off the event loop.

/**
 * A stored instance is read whole into memory to be rewritten up to this
 * size; a larger one is sent as stored when no syntax was asked for, and its
 * frames can still be had one by one.
 */
export const MAX_CONVERT_BYTES = 64 * 1024 * 1024;
/** Most bytes of native pixel data one conversion makes (all frames of an instance, or one frame). */
export const MAX_DECODED_BYTES = 256 * 1024 * 1024;

/** The transfer syntaxes Cairn encodes pixel data in, given a codec that can (PS3.5 Annex A.4). */
export const ENCODE_TARGETS: ReadonlyMap<string, string> = new Map([
  ['1.2.840.10008.1.2.4.90', 'image/jp2'],
  ['1.2.840.10008.1.2.4.80', 'image/jls'],
  ['1.2.840.10008.1.2.5', 'image/dicom-rle'],
  ['1.2.840.10008.1.2.4.50', 'image/jpeg'],
]);

/** A stored whole instance could not be made into what was asked: the default then sends it as stored. */
export class CannotConvert extends ApiError {
  constructor(message: string) {
    super(406, 'NotAcceptable', message);
  }
}

/** The codecs cannot encode pixels of this module in the syntax asked for; the bytes seam answers 406 with what they can. */
export class CannotEncode extends PixelError {
  constructor(
    readonly module: PixelModule,
    readonly to: string,
  ) {
    super(406, 'NotAcceptable', `Cairn cannot encode ${module.bitsAllocated}-bit ${module.photometricInterpretation} pixel data as ${to}`);
  }
}

/** The native pixel data size a module describes, in bytes (all frames). */
export function nativeSize(m: PixelModule, frames = m.numberOfFrames): number {
  return (m.rows * m.columns * m.samplesPerPixel * m.bitsAllocated * frames) / 8;
}

/** The Image Pixel module from what the data set has, with the defaults PS3.3 §C.7.6.3 gives absent attributes. */
export function completeModule(m: Partial<PixelModule>): PixelModule {
  if (!m.rows || !m.columns || !m.bitsAllocated) throw new PixelError(422, 'BadPixelModule', 'the instance has no Rows, Columns or Bits Allocated');
  const bitsStored = m.bitsStored ?? m.bitsAllocated;
  return {
    rows: m.rows,
    columns: m.columns,
    samplesPerPixel: m.samplesPerPixel ?? 1,
    bitsAllocated: m.bitsAllocated,
    bitsStored,
    highBit: m.highBit ?? bitsStored - 1,
    pixelRepresentation: m.pixelRepresentation === 1 ? 1 : 0,
    photometricInterpretation: m.photometricInterpretation ?? ((m.samplesPerPixel ?? 1) > 1 ? 'RGB' : 'MONOCHROME2'),
    planarConfiguration: m.planarConfiguration === 1 && (m.samplesPerPixel ?? 1) > 1 ? 1 : 0,
    numberOfFrames: Math.max(1, m.numberOfFrames ?? 1),
  };
}

/**
 * The pixel module of a stored instance from the bytes before its pixel data
 * (or the whole file), `inflated` when that is a deflated file's inflated form.
 */
export async function moduleOfHeader(header: Buffer, inflated = false): Promise<PixelModule> {
  const p = await openPart10(header, MAX_DECODED_BYTES, { inflated });
  return completeModule(pixelFacts(p, { untilPixelData: true }).module);
}

function checkSize(m: PixelModule, frames: number): void {
  const size = nativeSize(m, frames);
  if (size > MAX_DECODED_BYTES) {
    throw new PixelError(406, 'TooLargeToTranscode', `${size} bytes of native pixel data is more than Cairn makes in one conversion (${MAX_DECODED_BYTES})`);
  }
}

/** A native frame's bytes little endian: swapped when stored big endian as OW (PS3.5 §7.3). */
export function littleEndianFrame(stored: TransferSyntax, frame: Buffer, pixelVr: string): Buffer {
  if (stored.littleEndian || pixelVr !== 'OW' || frame.length % 2) return frame;
  return Buffer.from(frame).swap16();
}

/**
 * One stored frame as native little-endian pixels: a native frame made
 * little endian, an encapsulated one decoded by the codec pool.
 */
export async function nativeFrame(stored: TransferSyntax, frame: Buffer, module: PixelModule, pixelVr: string, pixels?: PixelCodecs): Promise<DecodedFrame> {
  if (!stored.encapsulated) return { module, pixels: littleEndianFrame(stored, frame, pixelVr) };
  checkSize(module, 1);
  if (!pixels?.canDecode(stored.uid)) throw new PixelError(406, 'NotAcceptable', `Cairn cannot decode pixel data stored as ${stored.uid}`);
  return pixels.decode(stored.uid, frame, module);
}

/**
 * A native frame encoded in `to` by the codec pool. Codecs take
 * colour-by-pixel samples (the DecodedFrame contract), so planar native
 * frames are interleaved first.
 */
export async function encodeFrame(to: string, frame: DecodedFrame, pixels?: PixelCodecs): Promise<EncodedFrame> {
  const input = byPixel(frame);
  if (!pixels || !ENCODE_TARGETS.has(to) || !pixels.canEncode(to, input.module)) throw new CannotEncode(input.module, to);
  return pixels.encode(to, input);
}

/** Colour-by-plane samples (PS3.3 §C.7.6.3.1.3) reordered colour-by-pixel. */
function byPixel(frame: DecodedFrame): DecodedFrame {
  const m = frame.module;
  if (m.planarConfiguration !== 1 || m.samplesPerPixel === 1) return frame;
  const bytes = m.bitsAllocated / 8;
  const plane = m.rows * m.columns * bytes;
  const out = Buffer.alloc(plane * m.samplesPerPixel);
  for (let px = 0; px < m.rows * m.columns; px++) {
    for (let s = 0; s < m.samplesPerPixel; s++)
      frame.pixels.copy(out, (px * m.samplesPerPixel + s) * bytes, s * plane + px * bytes, s * plane + (px + 1) * bytes);
  }
  return { module: { ...m, planarConfiguration: 0 }, pixels: out };
}

/** The stored frames of an opened instance, each as one buffer (fragments of a frame concatenated). */
function storedFrames(p: Part10, facts: PixelFacts, module: PixelModule): Buffer[] {
  const pd = facts.pixelData!;
  const map = mapFrames(pd, module);
  if (!map) throw new PixelError(422, 'FramesNotFound', 'the frames of the pixel data cannot be located');
  return map.map((spans) => Buffer.concat(spans.map((s) => p.dataset.subarray(s.offset, s.offset + s.length))));
}

function us(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n, 0);
  return b;
}

/** Attributes of the Image Pixel module that describe pixels made by a codec, where they differ from the stored ones. */
function describe(made: PixelModule, stored: PixelModule): Record<string, { vr: string; value: Buffer }> {
  const set: Record<string, { vr: string; value: Buffer }> = {};
  if (made.photometricInterpretation !== stored.photometricInterpretation)
    set[PHOTOMETRIC_INTERPRETATION] = { vr: 'CS', value: textValue(made.photometricInterpretation) };
  if (made.samplesPerPixel > 1 && made.planarConfiguration !== stored.planarConfiguration)
    set[PLANAR_CONFIGURATION] = { vr: 'US', value: us(made.planarConfiguration) };
  if (made.bitsAllocated !== stored.bitsAllocated) set[Tag.BitsAllocated] = { vr: 'US', value: us(made.bitsAllocated) };
  if (made.bitsStored !== stored.bitsStored) set['00280101'] = { vr: 'US', value: us(made.bitsStored) };
  if (made.highBit !== stored.highBit) set['00280102'] = { vr: 'US', value: us(made.highBit) };
  return set;
}

/**
 * A whole stored instance (a Part-10 file) in transfer syntax `to`:
 * Explicit VR Little Endian from any native syntax by rewriting alone, or
 * from an encapsulated one by decoding its frames; an encapsulated target by
 * encoding every frame. Lossy encoding of the pixel data sets Lossy Image
 * Compression, its ratio and method (PS3.3 §C.7.6.1.1.5), appended to what
 * the instance already had.
 */
export async function transcodeInstance(file: Buffer, to: string, pixels?: PixelCodecs): Promise<Buffer> {
  let p: Part10;
  try {
    p = await openPart10(file, MAX_DECODED_BYTES);
  } catch (err) {
    throw new PixelError(422, 'BadStoredInstance', `the stored instance cannot be read: ${(err as Error).message}`);
  }
  const stored = transferSyntax(p.transferSyntaxUid);
  try {
    if (to === EXPLICIT_VR_LE && !stored.encapsulated) return rewritePart10(p, { transferSyntaxUid: to });
    const facts = pixelFacts(p);
    if (!facts.pixelData) return rewritePart10(p, { transferSyntaxUid: to });
    const module = completeModule(facts.module);
    checkSize(module, module.numberOfFrames);
    const frames = storedFrames(p, facts, module);
    const decoded: DecodedFrame[] = [];
    for (const f of frames) decoded.push(await nativeFrame(stored, f, module, facts.pixelData.vr, pixels));
    if (to === EXPLICIT_VR_LE) {
      const made = decoded[0].module;
      const native = Buffer.concat(decoded.map((d) => d.pixels));
      if (native.length > MAX_VALUE_LENGTH) throw new CannotConvert('the pixel data is too long for Explicit VR Little Endian');
      return rewritePart10(p, { transferSyntaxUid: to, pixels: { native, bitsAllocated: made.bitsAllocated }, set: describe(made, module) });
    }
    const encoded: EncodedFrame[] = [];
    for (const d of decoded) encoded.push(await encodeFrame(to, d, pixels));
    const set = describe(encoded[0].module, module);
    const lossy = encoded.find((e) => e.lossy)?.lossy;
    if (lossy) {
      const raw = decoded.reduce((n, d) => n + d.pixels.length, 0);
      const packed = encoded.reduce((n, e) => n + e.bytes.length, 0);
      const ratio = (raw / packed).toFixed(2);
      set[LOSSY_IMAGE_COMPRESSION] = { vr: 'CS', value: textValue('01') };
      set[LOSSY_IMAGE_COMPRESSION_RATIO] = { vr: 'DS', value: textValue([...facts.lossyRatios, ratio].join('\\')) };
      set[LOSSY_IMAGE_COMPRESSION_METHOD] = { vr: 'CS', value: textValue([...facts.lossyMethods, lossy.method].join('\\')) };
    }
    return rewritePart10(p, { transferSyntaxUid: to, pixels: { fragments: encoded.map((e) => e.bytes) }, set });
  } catch (err) {
    if (err instanceof RewriteError) throw new PixelError(422, 'BadStoredInstance', `the stored instance cannot be rewritten: ${err.message}`);
    throw err;
  }
}
