import { isMainThread } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ApiError } from '../errors.js';
import { transferSyntax } from '../dicom/transfer-syntax.js';
import { encodeFrame as encodeImage, type EncodeOptions } from '../render/encode.js';
import { renderFrame, type RenderOptions } from '../render/pipeline.js';
import { CannotEncode, transcodeInstance } from '../transcode.js';
import { decodeFrame } from './decode.js';
import { canEncodeModule, encodeFrame } from './encode.js';
import { checkModule, type PixelLimits } from './limits.js';
import { lowerOwnPriority } from './priority.js';
import type { PixelCodecs, PixelModule } from './types.js';

// The pool worker (piscina): one task decodes, encodes or renders one frame. Answers
// are values, never thrown errors, because an error crossing threads loses
// its status and code; the result's pixel buffer is moved, not copied.

// Pixel work yields the CPU to the event loop and the database (priority.ts); never the main thread, should it import this module.
if (!isMainThread) lowerOwnPriority();

export type PixelTask =
  | { op: 'decode'; transferSyntaxUid: string; frame: Uint8Array; module: PixelModule; limits: PixelLimits }
  | { op: 'encode'; transferSyntaxUid: string; pixels: Uint8Array; module: PixelModule; limits: PixelLimits; quality?: number }
  | { op: 'render'; transferSyntaxUid: string; frame: Uint8Array; module: PixelModule; limits: PixelLimits; options: RenderOptions }
  | { op: 'image'; transferSyntaxUid: string; frame: Uint8Array; module: PixelModule; limits: PixelLimits; options: RenderOptions; encode: EncodeOptions }
  | { op: 'transcode'; transferSyntaxUid: string; file: Uint8Array; limits: PixelLimits };

export type PixelReply =
  | {
      ok: true;
      bytes: Uint8Array;
      /** The module of the pixels made (absent for a whole-instance transcode). */
      module?: PixelModule;
      lossy?: { ratio: number; method: string };
      /** For a render: the 8-bit image `bytes` holds. */
      image?: { width: number; height: number; channels: 1 | 3 };
    }
  | { ok: false; status: number; code: string; message: string; headers?: Record<string, string>; cannotEncode?: { module: PixelModule; to: string } };

class Moved {
  constructor(
    private readonly reply: PixelReply,
    private readonly buffer: ArrayBuffer,
  ) {}
  get [Piscina.transferableSymbol]() {
    return [this.buffer];
  }
  get [Piscina.valueSymbol]() {
    return this.reply;
  }
}

/** A buffer that owns exactly its ArrayBuffer, so moving that moves nothing else. */
function owned(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer ? b : new Uint8Array(b);
}

export default async function run(task: PixelTask): Promise<PixelReply | Moved> {
  try {
    const out = await perform(task);
    const bytes = owned(out.bytes);
    const reply: PixelReply = { ok: true, bytes, module: out.module, ...(out.lossy ? { lossy: out.lossy } : {}), ...(out.image ? { image: out.image } : {}) };
    // Piscina's types cannot see the symbol getters of a class; at run time move() takes any object that has them.
    return Piscina.move(new Moved(reply, bytes.buffer as ArrayBuffer) as unknown as ArrayBuffer) as unknown as Moved;
  } catch (err) {
    // CannotEncode keeps its module, from which the bytes seam lists what it can make instead.
    if (err instanceof CannotEncode)
      return { ok: false, status: err.status, code: err.code, message: err.message, cannotEncode: { module: err.module, to: err.to } };
    if (err instanceof ApiError) return { ok: false, status: err.status, code: err.code, message: err.message, headers: err.headers };
    return {
      ok: false,
      status: 422,
      code: 'CorruptPixelData',
      message: `the pixel data could not be processed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

type Done = { bytes: Uint8Array; module?: PixelModule; lossy?: { ratio: number; method: string }; image?: { width: number; height: number; channels: 1 | 3 } };

async function perform(task: PixelTask): Promise<Done> {
  if (task.op === 'decode') {
    const d = await decodeFrame(task.transferSyntaxUid, task.frame, task.module, task.limits);
    return { bytes: d.pixels, module: d.module };
  }
  if (task.op === 'transcode') {
    const out = await transcodeInstance(Buffer.from(task.file.buffer, task.file.byteOffset, task.file.byteLength), task.transferSyntaxUid, here(task.limits));
    return { bytes: out };
  }
  if (task.op === 'render') {
    const d = await decodeFrame(task.transferSyntaxUid, task.frame, task.module, task.limits);
    const r = renderFrame(d, task.options);
    return { bytes: r.data, module: d.module, image: { width: r.width, height: r.height, channels: r.channels } };
  }
  if (task.op === 'image') {
    const d = await decodeFrame(task.transferSyntaxUid, task.frame, task.module, task.limits);
    return { bytes: await encodeImage(renderFrame(d, task.options), task.encode) };
  }
  return encodeFrame(
    task.transferSyntaxUid,
    { module: task.module, pixels: Buffer.from(task.pixels.buffer, task.pixels.byteOffset, task.pixels.byteLength) },
    task.limits,
    task.quality,
  );
}

/** The codecs of this thread: a whole-instance transcode runs every frame here, not in another worker. */
function here(limits: PixelLimits): PixelCodecs {
  return {
    canDecode: (uid) => transferSyntax(uid).codec !== undefined,
    canEncode: (uid, module) => canEncodeModule(uid, module),
    async decode(uid, frame, module) {
      checkModule(module, limits);
      return decodeFrame(uid, frame, module, limits);
    },
    async encode(uid, frame, options = {}) {
      checkModule(frame.module, limits);
      return encodeFrame(uid, frame, limits, options.quality);
    },
    async render(uid, frame, module, options) {
      checkModule(module, limits);
      return renderFrame(await decodeFrame(uid, frame, module, limits), options);
    },
    async image(uid, frame, module, options, encode) {
      checkModule(module, limits);
      return encodeImage(renderFrame(await decodeFrame(uid, frame, module, limits), options), encode);
    },
    transcode: (file, to) => transcodeInstance(file, to, here(limits)),
    close: async () => undefined,
  };
}
