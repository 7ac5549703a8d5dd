import { createRequire } from 'node:module';

// The WebAssembly codecs (cornerstonejs builds of libjpeg-turbo, CharLS,
// OpenJPEG and OpenJPH), each initialised once per worker on first use.
// Their typings are not published, so the parts Cairn calls are declared here.

const require = createRequire(import.meta.url);

export interface FrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
  isUsingColorTransform?: boolean;
}

interface Deletable {
  delete(): void;
}

export interface WasmDecoder extends Deletable {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  readHeader?(): void;
  decode(): void;
  getFrameInfo(): FrameInfo;
}

export interface WasmEncoder extends Deletable {
  getDecodedBuffer(info: FrameInfo): Uint8Array;
  getEncodedBuffer(): Uint8Array;
  encode(): void;
  setQuality?(...args: (number | boolean)[]): void;
  setNearLossless?(n: number): void;
  setInterleaveMode?(mode: number): void;
  setProgressive?(on: boolean): void;
}

type Ctor<T> = new () => T;

export interface CodecModules {
  jpeg: { JPEGDecoder: Ctor<WasmDecoder>; JPEGEncoder: Ctor<WasmEncoder> };
  jpegls: { JpegLSDecoder: Ctor<WasmDecoder>; JpegLSEncoder: Ctor<WasmEncoder> };
  j2k: { J2KDecoder: Ctor<WasmDecoder>; J2KEncoder: Ctor<WasmEncoder> };
  htj2k: { HTJ2KDecoder: Ctor<WasmDecoder>; HTJ2KEncoder: Ctor<WasmEncoder> };
}

const PACKAGES: Record<keyof CodecModules, string> = {
  jpeg: '@cornerstonejs/codec-libjpeg-turbo-8bit/wasmjs',
  jpegls: '@cornerstonejs/codec-charls/wasmjs',
  j2k: '@cornerstonejs/codec-openjpeg/wasmjs',
  htj2k: '@cornerstonejs/codec-openjph/wasmjs',
};

const loaded = new Map<keyof CodecModules, Promise<unknown>>();

/** The codec module, initialised on first call; its console output (OpenJPEG's progress lines) is dropped. */
export function codecModule<K extends keyof CodecModules>(name: K): Promise<CodecModules[K]> {
  let m = loaded.get(name);
  if (!m) {
    const factory = require(PACKAGES[name]) as (o: object) => Promise<unknown>;
    m = factory({ print() {}, printErr() {} });
    loaded.set(name, m);
    m.catch(() => loaded.delete(name));
  }
  return m as Promise<CodecModules[K]>;
}

/**
 * Forgets a module after it aborted (out of memory, a trap), so the next frame
 * gets a freshly initialised instance rather than a broken one.
 */
export function dropCodecModule(name: keyof CodecModules): void {
  loaded.delete(name);
}

/** Runs `fn` with a codec object and frees the object's WebAssembly memory afterwards, whatever happens. */
export function using<T extends Deletable, R>(obj: T, fn: (o: T) => R): R {
  try {
    return fn(obj);
  } finally {
    try {
      obj.delete();
    } catch {
      // An object of an aborted module cannot be freed; the module is dropped instead.
    }
  }
}

interface LosslessDecoder {
  decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array;
}

let lossless: { Decoder: new () => LosslessDecoder } | undefined;

/** jpeg-lossless-decoder-js (plain JavaScript), for JPEG lossless process 14. */
export function losslessDecoder(): LosslessDecoder {
  lossless ??= require('jpeg-lossless-decoder-js') as { Decoder: new () => LosslessDecoder };
  return new lossless.Decoder();
}

/** The parts of dcmjs-codecs Cairn calls (its own typings describe its transcoder, which Cairn does not use). */
interface Jpeg12Context {
  getDecodedBuffer(): Uint8Array;
}
interface Jpeg12Module {
  NativeCodecs: {
    initializeAsync(opts: { logCodecsInfo: boolean; logCodecsTrace: boolean }): Promise<void>;
    decodeJpeg(context: Jpeg12Context, params: object): Jpeg12Context;
    release(): void;
  };
  Context: new (attrs: {
    width: number;
    height: number;
    bitsAllocated: number;
    bitsStored: number;
    samplesPerPixel: number;
    pixelRepresentation: number;
    planarConfiguration: number;
    photometricInterpretation: string;
    encodedBuffer: Uint8Array;
  }) => Jpeg12Context;
  log: { setLevel(level: string): void };
}

let jpeg12: Promise<Jpeg12Module> | undefined;

/**
 * dcmjs-codecs' WebAssembly build of the IJG libjpeg with its 12-bit
 * decoder, for JPEG Extended (process 2 & 4) frames of more than 8 bits,
 * which the 8-bit libjpeg-turbo build cannot decode; initialised once per
 * worker on first use, its messages silenced (a warning is not a failure).
 */
export function jpeg12Codec(): Promise<Jpeg12Module> {
  if (!jpeg12) {
    const m = require('dcmjs-codecs') as Jpeg12Module;
    m.log.setLevel('silent');
    const started = m.NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false }).then(() => m);
    jpeg12 = started;
    started.catch(() => {
      jpeg12 = undefined;
    });
  }
  return jpeg12;
}

/** Drops the 12-bit codec's instance after a failure inside it, so the next frame gets a fresh one. */
export function dropJpeg12Codec(): void {
  const was = jpeg12;
  jpeg12 = undefined;
  void was?.then((m) => m.NativeCodecs.release()).catch(() => undefined);
}
