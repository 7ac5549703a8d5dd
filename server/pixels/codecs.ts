import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Piscina } from 'piscina';
import { EXPLICIT_VR_LE, transferSyntax } from '../dicom/transfer-syntax.js';
import { encodeFrame as encodeImage, loadSharp } from '../render/encode.js';
import { renderFrame, type RenderedPixels } from '../render/pipeline.js';
import { CannotEncode, transcodeInstance } from '../transcode.js';
import { decodeFrame } from './decode.js';
import { canEncodeModule, encodeFrame } from './encode.js';
import { checkModule, DEFAULT_MAX_FRAME_BYTES, type PixelLimits } from './limits.js';
import { storedFrameBytes } from './native.js';
import { PixelError, type DecodedFrame, type EncodedFrame, type PixelCodecs, type PixelModule } from './types.js';
import type { PixelReply, PixelTask } from './worker.js';

export interface PixelCodecOptions {
  /** Worker threads; default min(2, cores). */
  workers?: number;
  /** Frames that may wait for a worker; past it a call fails with 503 at once. Default 32 per worker. */
  maxQueue?: number;
  /** Most bytes one decoded frame may take; larger declared images fail with 422 before anything is allocated. */
  maxFrameBytes?: number;
  /**
   * Native frames up to this many bytes are decoded (and frames encoded as
   * native) on the calling thread: a copy or byte swap of that size costs
   * less than the trip to a worker. 0 sends every frame to the pool.
   */
  inlineBytes?: number;
  /**
   * Native frames of up to this many pixels are rendered on the calling
   * thread (a 256×256 frame takes well under a millisecond); larger ones, and
   * every compressed frame, are decoded and rendered in a worker. 0 sends
   * every render to the pool.
   */
  inlineRenderPixels?: number;
  /** Whole instances up to this many bytes are transcoded on the calling thread; larger ones in a worker. 0 sends every one to the pool. */
  inlineTranscodeBytes?: number;
  /** The worker module; tests point it at one that wraps server/pixels/worker.ts. */
  workerUrl?: URL;
}

const require = createRequire(import.meta.url);

/**
 * The worker entry and how to load it: the compiled worker.js beside this
 * file in the built server (server/build.mjs transpiles every server file),
 * or the TypeScript source under tsx when Cairn runs from source (tests, dev).
 */
function workerEntry(url: URL | undefined): { filename: string; execArgv?: string[] } {
  const entry = url ?? new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
  if (!entry.pathname.endsWith('.ts')) return { filename: entry.href };
  const tsx = pathToFileURL(path.join(path.dirname(require.resolve('tsx/package.json')), 'dist/loader.mjs')).href;
  return { filename: entry.href, execArgv: ['--import', tsx] };
}

/**
 * A copy of the caller's bytes in an ArrayBuffer of their own, moved to the
 * worker: the caller's buffer may be a view of a whole instance, which a
 * structured clone would copy entire.
 */
function own(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b);
}

/** The caller's bytes as they are when they are the whole of their ArrayBuffer (moved to the worker, not copied), else a copy. */
function movable(b: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer && b.byteLength > 0;
  return whole ? (b as Uint8Array<ArrayBuffer>) : own(b);
}

/** Cairn's pixel codecs: decoding and encoding in a pool of worker threads (piscina), started on first use. */
export function createPixelCodecs(opts: PixelCodecOptions = {}): PixelCodecs {
  const workers = Math.max(1, opts.workers ?? Math.min(2, availableParallelism()));
  const maxQueue = opts.maxQueue ?? workers * 32;
  const limits: PixelLimits = { maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES };
  const inlineBytes = opts.inlineBytes ?? 1024 * 1024;
  const inlineRenderPixels = opts.inlineRenderPixels ?? 256 * 256;
  const inlineTranscodeBytes = opts.inlineTranscodeBytes ?? 256 * 1024;
  let pool: Piscina<PixelTask, PixelReply> | undefined;
  let closed = false;

  // piscina is loaded with the first frame for the pool, so processes that never touch pixels (the CLIs) do not pay for it.
  let starting: Promise<Piscina<PixelTask, PixelReply>> | undefined;
  const getPool = () => {
    if (closed) throw new PixelError(503, 'PixelServiceClosed', 'the pixel service is shutting down', { 'Retry-After': '10' });
    starting ??= import('piscina').then(({ Piscina }) => {
      // Workers that exit (a codec that crashed the thread) are replaced by piscina up to minThreads.
      pool = new Piscina<PixelTask, PixelReply>({ ...workerEntry(opts.workerUrl), minThreads: workers, maxThreads: workers, maxQueue, idleTimeout: 60_000 });
      return pool;
    });
    return starting;
  };

  async function submit(
    task: PixelTask,
    transfer: ArrayBuffer,
  ): Promise<{ bytes: Buffer; module?: PixelModule; lossy?: { ratio: number; method: string }; image?: { width: number; height: number; channels: 1 | 3 } }> {
    const p = await getPool();
    if (closed) throw new PixelError(503, 'PixelServiceClosed', 'the pixel service is shutting down', { 'Retry-After': '10' });
    let reply: PixelReply;
    try {
      reply = await p.run(task, { transferList: [transfer] });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/queue is at limit/i.test(msg)) {
        throw new PixelError(503, 'PixelServiceBusy', 'every pixel worker is busy and the queue is full; try again shortly', { 'Retry-After': '2' });
      }
      throw new PixelError(500, 'PixelWorkerFailed', 'the pixel worker handling this frame stopped before it finished');
    }
    if (!reply.ok) {
      if (reply.cannotEncode) throw new CannotEncode(reply.cannotEncode.module, reply.cannotEncode.to);
      throw new PixelError(reply.status, reply.code, reply.message, reply.headers);
    }
    return {
      bytes: Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength),
      module: reply.module,
      lossy: reply.lossy,
      image: reply.image,
    };
  }

  return {
    canDecode(uid) {
      return transferSyntax(uid).codec !== undefined;
    },
    canEncode(uid, module) {
      return canEncodeModule(uid, module);
    },
    async decode(uid, frame, module): Promise<DecodedFrame> {
      checkModule(module, limits);
      const codec = transferSyntax(uid).codec;
      if (!codec) throw new PixelError(406, 'UnsupportedTransferSyntax', `frames in transfer syntax ${uid} cannot be decoded by this server`);
      if ((codec === 'native' || codec === 'native-be') && storedFrameBytes(module) <= inlineBytes) return decodeFrame(uid, frame, module, limits);
      const copy = own(frame);
      const out = await submit({ op: 'decode', transferSyntaxUid: uid, frame: copy, module, limits }, copy.buffer);
      return { module: out.module ?? module, pixels: out.bytes };
    },
    async encode(uid, frame, options = {}): Promise<EncodedFrame> {
      checkModule(frame.module, limits);
      if (uid === EXPLICIT_VR_LE && frame.pixels.length <= inlineBytes) return encodeFrame(uid, frame, limits);
      const copy = own(frame.pixels);
      const out = await submit({ op: 'encode', transferSyntaxUid: uid, pixels: copy, module: frame.module, limits, quality: options.quality }, copy.buffer);
      return { bytes: out.bytes, module: out.module ?? frame.module, ...(out.lossy ? { lossy: out.lossy } : {}) };
    },
    async render(uid, frame, module, options): Promise<RenderedPixels> {
      checkModule(module, limits);
      const codec = transferSyntax(uid).codec;
      if (!codec) throw new PixelError(406, 'UnsupportedTransferSyntax', `frames in transfer syntax ${uid} cannot be decoded by this server`);
      if ((codec === 'native' || codec === 'native-be') && module.rows * module.columns <= inlineRenderPixels)
        return renderFrame(await decodeFrame(uid, frame, module, limits), options);
      const copy = own(frame);
      const out = await submit({ op: 'render', transferSyntaxUid: uid, frame: copy, module, limits, options }, copy.buffer);
      if (!out.image) throw new PixelError(500, 'PixelWorkerFailed', 'the pixel worker answered a render without an image');
      return { ...out.image, data: out.bytes };
    },
    async image(uid, frame, module, options, encode): Promise<Buffer> {
      checkModule(module, limits);
      const codec = transferSyntax(uid).codec;
      if (!codec) throw new PixelError(406, 'UnsupportedTransferSyntax', `frames in transfer syntax ${uid} cannot be decoded by this server`);
      if ((codec === 'native' || codec === 'native-be') && module.rows * module.columns <= inlineRenderPixels)
        return encodeImage(renderFrame(await decodeFrame(uid, frame, module, limits), options), encode);
      // libvips loaded by this thread before any worker loads it (see loadSharp).
      await loadSharp();
      const copy = movable(frame);
      return (await submit({ op: 'image', transferSyntaxUid: uid, frame: copy, module, limits, options, encode }, copy.buffer)).bytes;
    },
    async transcode(file, to): Promise<Buffer> {
      if (file.length <= inlineTranscodeBytes) return transcodeInstance(file, to, this);
      const copy = own(file);
      return (await submit({ op: 'transcode', transferSyntaxUid: to, file: copy, limits }, copy.buffer)).bytes;
    },
    async close() {
      closed = true;
      await starting?.catch(() => undefined);
      const p = pool;
      pool = undefined;
      await p?.destroy();
    },
  };
}
