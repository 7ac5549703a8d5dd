import { Piscina } from 'piscina';
import { decodeFrame } from './decode.js';
import { encodeFrame } from './encode.js';
import type { PixelLimits } from './limits.js';
import { PixelError, type PixelModule } from './types.js';

// The pool worker (piscina): one task decodes or encodes one frame. Answers
// are values, never thrown errors, because an error crossing threads loses
// its status and code; the result's pixel buffer is moved, not copied.

export type PixelTask =
  | { op: 'decode'; transferSyntaxUid: string; frame: Uint8Array; module: PixelModule; limits: PixelLimits }
  | { op: 'encode'; transferSyntaxUid: string; pixels: Uint8Array; module: PixelModule; limits: PixelLimits; quality?: number };

export type PixelReply =
  | { ok: true; bytes: Uint8Array; module: PixelModule; lossy?: { ratio: number; method: string } }
  | { ok: false; status: number; code: string; message: string };

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
    const out =
      task.op === 'decode'
        ? await decodeFrame(task.transferSyntaxUid, task.frame, task.module, task.limits).then((d) => ({ bytes: d.pixels, module: d.module, lossy: undefined }))
        : await encodeFrame(
            task.transferSyntaxUid,
            { module: task.module, pixels: Buffer.from(task.pixels.buffer, task.pixels.byteOffset, task.pixels.byteLength) },
            task.limits,
            task.quality,
          );
    const bytes = owned(out.bytes);
    const reply: PixelReply = { ok: true, bytes, module: out.module, ...(out.lossy ? { lossy: out.lossy } : {}) };
    // Piscina's types cannot see the symbol getters of a class; at run time move() takes any object that has them.
    return Piscina.move(new Moved(reply, bytes.buffer as ArrayBuffer) as unknown as ArrayBuffer) as unknown as Moved;
  } catch (err) {
    if (err instanceof PixelError) return { ok: false, status: err.status, code: err.code, message: err.message };
    return {
      ok: false,
      status: 422,
      code: 'CorruptPixelData',
      message: `the pixel data could not be processed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}
