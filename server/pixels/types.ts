import { ApiError } from '../errors.js';
import type { EncodeOptions } from '../render/encode.js';
import type { RenderedPixels, RenderOptions } from '../render/pipeline.js';

// The contract between Cairn's pixel codecs (decode and encode, run in a
// worker pool) and the code that serves pixels (transcoding in the bytes
// seam, rendered images and thumbnails).

/** The Image Pixel module attributes (PS3.3 §C.7.6.3) that decoding, encoding and rendering need. */
export interface PixelModule {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  /** 0 unsigned, 1 two's complement. */
  pixelRepresentation: 0 | 1;
  photometricInterpretation: string;
  /** 0 colour-by-pixel, 1 colour-by-plane (PS3.3 §C.7.6.3.1.3); 0 when one sample. */
  planarConfiguration: 0 | 1;
  numberOfFrames: number;
}

/**
 * One frame as native pixels: little-endian samples of `module.bitsAllocated`
 * bits (1-bit data unpacked to one byte per pixel, with bitsAllocated 8),
 * colour-by-pixel. `module` describes these pixels, so it can differ from the
 * stored one (a YBR_FULL_422 JPEG decodes to RGB, planar configuration 1 to 0).
 */
export interface DecodedFrame {
  module: PixelModule;
  pixels: Buffer;
}

/** One frame encoded in a transfer syntax, with the module that describes the encoded data. */
export interface EncodedFrame {
  bytes: Buffer;
  module: PixelModule;
  /** Set when the encoding lost information: PS3.3 §C.7.6.1.1.5 LossyImageCompressionRatio and Method (e.g. ISO_10918_1). */
  lossy?: { ratio: number; method: string };
}

/** The pixel codecs, off the event loop. Every method fails with a PixelError for data it cannot handle. */
export interface PixelCodecs {
  /** Whether frames stored in this transfer syntax can be decoded. */
  canDecode(transferSyntaxUid: string): boolean;
  /** Whether frames of this module can be encoded in this transfer syntax. */
  canEncode(transferSyntaxUid: string, module: PixelModule): boolean;
  /**
   * Decodes one stored frame: for native syntaxes the frame's bytes in the
   * stored byte order; for encapsulated ones the frame's fragments
   * concatenated. `module` is the stored instance's.
   */
  decode(transferSyntaxUid: string, frame: Buffer, module: PixelModule): Promise<DecodedFrame>;
  /** Encodes a decoded frame in a transfer syntax (`quality` 1-100 for lossy targets). */
  encode(transferSyntaxUid: string, frame: DecodedFrame, options?: { quality?: number }): Promise<EncodedFrame>;
  /**
   * Decodes one stored frame (as `decode` takes it) and takes it through the
   * display pipeline (server/render/pipeline.ts) to 8-bit values, in one trip
   * to a worker, so neither the decoding nor the rendering math runs on the
   * event loop.
   */
  render(transferSyntaxUid: string, frame: Buffer, module: PixelModule, options: RenderOptions): Promise<RenderedPixels>;
  /**
   * As `render`, then encoded as an image (server/render/encode.ts), all in
   * one trip to a worker: the image's bytes come back instead of its pixels,
   * and every step of the image runs at the low priority of pixel work.
   * A `frame` that is the whole of its ArrayBuffer is moved to the worker,
   * not copied: the caller must not read it afterwards.
   */
  image(transferSyntaxUid: string, frame: Buffer, module: PixelModule, options: RenderOptions, encode: EncodeOptions): Promise<Buffer>;
  /**
   * A whole stored Part-10 instance in another transfer syntax
   * (server/transcode.ts): parsing, byte swapping, decoding, encoding and
   * rewriting all in one worker, so a large instance does not hold the
   * event loop.
   */
  transcode(file: Buffer, to: string): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * Pixel data that cannot be decoded or encoded: corrupt or truncated data, a
 * declared size past the limits, an unsupported combination. `status` is the
 * HTTP status it is answered with (422 for bad stored data, 406 for a
 * representation that cannot be made, 503 when the pool is saturated).
 */
export class PixelError extends ApiError {
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(status, code, message, headers);
    this.name = 'PixelError';
  }
}
