import { transferSyntax } from '../dicom/transfer-syntax.js';
import { readJ2kHeader, readJpegHeader, j2kCodestream, type CodestreamHeader } from './headers.js';
import { bytesPerSample, checkModule, corrupt, type PixelLimits } from './limits.js';
import { decodeNative, planarToPixel } from './native.js';
import { decodeRle } from './rle.js';
import { PixelError, type DecodedFrame, type PixelModule } from './types.js';
import { codecModule, dropCodecModule, dropJpeg12Codec, jpeg12Codec, losslessDecoder, using, type CodecModules, type WasmDecoder } from './wasm.js';

// Decoding one stored frame, in whatever transfer syntax, into the form of
// DecodedFrame (server/pixels/types.ts). Runs in a pool worker; native frames
// of moderate size may also be decoded in place (see codecs.ts).

/** Decodes one frame; every failure is a PixelError. */
export async function decodeFrame(transferSyntaxUid: string, frame: Uint8Array, m: PixelModule, limits: PixelLimits): Promise<DecodedFrame> {
  checkModule(m, limits);
  const codec = transferSyntax(transferSyntaxUid).codec;
  if (codec === 'native') return decodeNative(frame, m, false);
  if (codec === 'native-be') return decodeNative(frame, m, true);
  if (codec === 'rle') return decodeRle(frame, m);
  if (m.bitsAllocated === 1 || m.bitsAllocated === 32) {
    throw new PixelError(406, 'UnsupportedPixelData', `compressed frames of ${m.bitsAllocated}-bit pixels cannot be decoded by this server`);
  }
  if (codec === 'jpeg') return decodeJpeg(frame, m);
  if (codec === 'jpeg-lossless') return decodeJpegLossless(frame, m);
  if (codec === 'jpeg-ls') return decodeWasm('jpegls', 'JPEG-LS', frame, m, readJpegHeader(frame));
  if (codec === 'j2k' || codec === 'htj2k') {
    const cs = j2kCodestream(frame);
    return decodeWasm(codec === 'j2k' ? 'j2k' : 'htj2k', codec === 'j2k' ? 'JPEG 2000' : 'HTJ2K', cs, m, readJ2kHeader(cs));
  }
  throw new PixelError(406, 'UnsupportedTransferSyntax', `frames in transfer syntax ${transferSyntaxUid} cannot be decoded by this server`);
}

/** The codestream agrees with the data set's image pixel module: same size and samples, no more bits than allocated. */
function checkHeader(h: CodestreamHeader, m: PixelModule, what: string): void {
  if (h.width !== m.columns || h.height !== m.rows) {
    throw corrupt(`the ${what} codestream is ${h.width} × ${h.height} pixels where the data set says ${m.columns} × ${m.rows}`);
  }
  if (h.components !== m.samplesPerPixel)
    throw corrupt(`the ${what} codestream has ${h.components} components where the data set says ${m.samplesPerPixel} samples per pixel`);
  if (h.precision > m.bitsAllocated || h.precision > 16)
    throw corrupt(`the ${what} codestream has ${h.precision}-bit samples where the data set allocates ${m.bitsAllocated} bits`);
}

/** ISO 10918-1 §B.1.1.1 / ISO 14495-1: a whole codestream ends with EOI; trailing padding (PS3.5 §A.4) is allowed. */
function checkEoi(b: Uint8Array, what: string): void {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0 && b.length - end < 16) end--;
  for (let i = end - 2; i >= Math.max(0, end - 16); i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return;
  throw corrupt(`the ${what} codestream has no end-of-image marker: the frame is truncated`);
}

async function decodeJpeg(frame: Uint8Array, m: PixelModule): Promise<DecodedFrame> {
  const h = readJpegHeader(frame);
  checkHeader(h, m, 'JPEG');
  checkEoi(frame, 'JPEG');
  if (h.precision > 8) return decodeJpeg12(frame, m, h);
  return decodeWasm('jpeg', 'JPEG', frame, m, h);
}

/**
 * ISO 10918-1 §4.11: the DCT processes code 8- or 12-bit samples; 12-bit ones
 * (JPEG Extended, process 4) are decoded by IJG libjpeg's 12-bit build, as
 * unsigned samples in 16 bits (PS3.5 §8.2.1: signed data is coded as its
 * two's complement bits, sign-extended in finish()).
 */
async function decodeJpeg12(frame: Uint8Array, m: PixelModule, h: CodestreamHeader): Promise<DecodedFrame> {
  if (h.precision !== 12) throw corrupt(`the JPEG codestream has ${h.precision}-bit samples; the JPEG DCT processes code 8 or 12 bits`);
  if (m.samplesPerPixel !== 1)
    throw new PixelError(406, 'UnsupportedPixelData', `this server decodes 12-bit JPEG frames of one sample per pixel, not ${m.samplesPerPixel}`);
  const codec = await jpeg12Codec();
  let raw: Uint8Array;
  try {
    const context = new codec.Context({
      width: m.columns,
      height: m.rows,
      bitsAllocated: 16,
      bitsStored: 12,
      samplesPerPixel: 1,
      pixelRepresentation: 0,
      planarConfiguration: 0,
      photometricInterpretation: m.photometricInterpretation,
      encodedBuffer: frame,
    });
    raw = new Uint8Array(codec.NativeCodecs.decodeJpeg(context, {}).getDecodedBuffer());
  } catch (err) {
    dropJpeg12Codec();
    throw corrupt(`the 12-bit JPEG codec could not decode the frame: ${message(err)}`);
  }
  return finish(raw, 2, h, m, NONE);
}

function decodeJpegLossless(frame: Uint8Array, m: PixelModule): DecodedFrame {
  const h = readJpegHeader(frame);
  checkHeader(h, m, 'JPEG lossless');
  checkEoi(frame, 'JPEG lossless');
  const numBytes = h.precision > 8 ? 2 : 1;
  let data: Uint8Array | Uint16Array;
  try {
    const copy = new Uint8Array(frame);
    data = losslessDecoder().decode(copy.buffer, 0, copy.length, numBytes);
  } catch (err) {
    throw corrupt(`the JPEG lossless codec could not decode the frame: ${message(err)}`);
  }
  return finish(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), numBytes, h, m, NONE);
}

async function decodeWasm(name: keyof CodecModules, what: string, frame: Uint8Array, m: PixelModule, h: CodestreamHeader): Promise<DecodedFrame> {
  checkHeader(h, m, what);
  if (name === 'jpegls') checkEoi(frame, what);
  const mod = await codecModule(name);
  const Decoder = (mod as unknown as Record<string, new () => WasmDecoder>)[decoderName(name)];
  let raw: Uint8Array;
  let planar = false;
  try {
    raw = using(new Decoder(), (d) => {
      d.getEncodedBuffer(frame.length).set(frame);
      d.decode();
      const info = d.getFrameInfo();
      if (info.width !== m.columns || info.height !== m.rows || info.componentCount !== m.samplesPerPixel) {
        throw corrupt(
          `the ${what} codec decoded ${info.width} × ${info.height} × ${info.componentCount} where the data set says ${m.columns} × ${m.rows} × ${m.samplesPerPixel}`,
        );
      }
      // CharLS leaves a frame coded with interleave mode "none" colour-by-plane (ISO 14495-1 §C.2.3).
      if (name === 'jpegls' && m.samplesPerPixel > 1) planar = (d as unknown as { getInterleaveMode(): number }).getInterleaveMode() === 0;
      return d.getDecodedBuffer().slice();
    });
  } catch (err) {
    if (err instanceof PixelError) throw err;
    if (err instanceof WebAssembly.RuntimeError || /abort/i.test(message(err))) dropCodecModule(name);
    throw corrupt(`the ${what} codec could not decode the frame: ${message(err)}`);
  }
  const width = h.precision > 8 ? 2 : 1;
  if (planar) raw = planarToPixel(raw, m.rows * m.columns, m.samplesPerPixel, width);
  return finish(raw, width, h, m, CONVERTED[name]);
}

const NONE: readonly string[] = [];
/**
 * Colour the codec turns into RGB as it decodes: libjpeg-turbo converts
 * YCbCr JPEG (PS3.5 §8.2.1), OpenJPEG and OpenJPH undo the reversible and
 * irreversible component transforms (PS3.5 §8.2.4, ISO 15444-1 Annex G).
 */
const CONVERTED: Record<keyof CodecModules, readonly string[]> = {
  jpeg: ['YBR_FULL_422', 'YBR_FULL', 'YBR_PARTIAL_420'],
  jpegls: NONE,
  j2k: ['YBR_RCT', 'YBR_ICT'],
  htj2k: ['YBR_RCT', 'YBR_ICT'],
};

function decoderName(name: keyof CodecModules): string {
  return { jpeg: 'JPEGDecoder', jpegls: 'JpegLSDecoder', j2k: 'J2KDecoder', htj2k: 'HTJ2KDecoder' }[name];
}

/**
 * Decoded samples of `width` bytes into the data set's bits allocated:
 * widened when the codestream holds fewer bits, sign-extended from bits
 * stored when the codec returns signed data as unsigned, and colour the
 * codec already converted (JPEG YCbCr, JPEG 2000 RCT/ICT) labelled RGB.
 */
function finish(raw: Uint8Array, width: number, h: CodestreamHeader, m: PixelModule, converted: readonly string[]): DecodedFrame {
  const count = m.rows * m.columns * m.samplesPerPixel;
  if (raw.length < count * width) throw corrupt(`the codec returned ${raw.length} bytes where the frame needs ${count * width}`);
  const target = bytesPerSample(m);
  let out: Buffer;
  if (target === width) {
    out = Buffer.from(raw.buffer, raw.byteOffset, count * width);
    if (raw.byteOffset !== 0 || raw.buffer.byteLength !== count * width) out = Buffer.from(out);
  } else {
    out = Buffer.alloc(count * target);
    const signed = m.pixelRepresentation === 1 && h.signed !== false;
    for (let i = 0; i < count; i++) {
      const v = signed && raw[i] & 0x80 ? raw[i] - 256 : raw[i];
      out.writeInt16LE(v > 32767 ? v - 65536 : v, 2 * i);
    }
  }
  if (target === 2 && m.pixelRepresentation === 1 && h.signed !== true && h.precision < 16 && h.precision === m.bitsStored) {
    // Lossless JPEG and JPEG-LS code samples as unsigned numbers of `precision` bits.
    const sign = 1 << (h.precision - 1);
    const span = 1 << h.precision;
    for (let i = 0; i < count; i++) {
      const v = out.readUInt16LE(2 * i);
      if (v & sign && v < span) out.writeInt16LE(v - span, 2 * i);
    }
  }
  const rgb = m.samplesPerPixel === 3 && converted.includes(m.photometricInterpretation);
  const module: PixelModule = { ...m, planarConfiguration: 0, ...(rgb ? { photometricInterpretation: 'RGB' } : {}) };
  return { module, pixels: out };
}

function message(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'number') return `codec error ${err}`;
  return String(err);
}
