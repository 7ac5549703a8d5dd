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
