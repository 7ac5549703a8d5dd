import { availableParallelism } from 'node:os';
import type { BlobStore } from '../blob/blob-store.js';
import { readRanges } from '../blob/spans.js';
import type { RenderableInstance } from '../db/lookup.js';
import type { Span } from '../db/rows.js';
import type { DicomJson } from '../dicom/json.js';
import { transferSyntax } from '../dicom/transfer-syntax.js';
import { ApiError } from '../errors.js';
import { PixelError, type PixelCodecs } from '../pixels/types.js';
import { renderAttributesOf } from './attributes.js';
import { encodeAnimation, type RenderedType, type Viewport } from './encode.js';
import type { RenderOptions, RenderedPixels, Window } from './pipeline.js';

// Rendered images of stored instances (PS3.18 §10.4.1.1.3 rendered
// resources, §10.4.1.1.4 thumbnails): the frame read by range from the blob,
// decoded, taken through the pipeline (pipeline.ts) and encoded (encode.ts).

/** Runs CPU-heavy work when a slot is free (renderSlots). */
export type RenderSlots = <T>(work: () => Promise<T>) => Promise<T>;

export interface RenderDeps {
  blobs: BlobStore;
  /** Where rendering waits its turn; without it, it runs at once. */
  slots?: RenderSlots;
  /** The pixel codecs (server/pixels/), which decode every stored transfer syntax they can. */
  pixels: PixelCodecs;
}

/** How the client asked for the image (PS3.18 §8.3.5.1). */
export interface RenderRequest {
  type: RenderedType;
  window?: Window;
  viewport?: Viewport;
  quality?: number;
}

/** Declared frames above this many pixels are refused before any byte is read. */
const MAX_PIXELS = 1 << 26;
/** Most pixels of all frames of one animated image (64 frames of 512×512), so memory stays bounded. */
const MAX_ANIMATION_PIXELS = 1 << 24;

/** The frame numbers (from 1) an instance has; 404 for any it does not. */
export function checkFrames(row: RenderableInstance, numbers: number[]): void {
  if (!row.frames) throw new PixelError(422, 'NoFrames', `instance ${row.sopInstanceUid} has no pixel data frames that can be located`);
  const missing = numbers.find((n) => n > row.frames!.length);
  if (missing) throw new ApiError(404, 'FrameNotFound', `frame ${missing} does not exist; instance ${row.sopInstanceUid} has ${row.frames.length}`);
}

/**
 * Renders frames of an instance as one image: one frame, or with image/gif
 * several frames as an animation.
 */
export async function renderImage(deps: RenderDeps, row: RenderableInstance, numbers: number[], req: RenderRequest): Promise<Buffer> {
  checkFrames(row, numbers);
  const json = JSON.parse(row.metadata) as DicomJson;
  const { module, options } = await renderAttributesOf(json, (tag) => readBulk(deps, row, tag));
  if (module.rows * module.columns > MAX_PIXELS)
    throw new PixelError(422, 'ImageTooLarge', `a ${module.columns}×${module.rows} frame is larger than Cairn renders`);
  if (numbers.length > 1 && numbers.length * module.rows * module.columns > MAX_ANIMATION_PIXELS)
    throw new PixelError(
      422,
      'AnimationTooLarge',
      `${numbers.length} frames of ${module.columns}×${module.rows} are more than Cairn puts in one image; ask for fewer frames`,
    );
  const opts: RenderOptions = req.window ? { ...options, window: req.window, voiLut: undefined } : options;
  const stored: Buffer[] = [];
  for (const n of numbers) stored.push(await readSpans(deps.blobs, row.blobKey, row.frames![n - 1]));
  const run: RenderSlots = deps.slots ?? ((work) => work());
  return run(async () => {
    // Decoded, rendered and (one frame) encoded in the pixel pool (server/pixels/codecs.ts), off the event loop.
    if (stored.length === 1)
      return deps.pixels.image(row.transferSyntaxUid, stored[0], module, opts, { type: req.type, viewport: req.viewport, quality: req.quality });
    const pixels: RenderedPixels[] = [];
    for (const bytes of stored) pixels.push(await deps.pixels.render(row.transferSyntaxUid, bytes, module, opts));
    return encodeAnimation(pixels, { type: req.type, viewport: req.viewport });
  });
}

/**
 * Rendering is CPU work (decoding, the pipeline, encoding): at most one image
 * per core but one is made at a time, so that searches and retrieves keep a
 * core while renders queue. Past the queue limit a render is refused at once
 * with 503, rather than holding memory for a backlog.
 */
export function renderSlots(slots = Math.max(1, availableParallelism() - 1), queue = 64): RenderSlots {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (work) => {
    if (running >= slots) {
      if (waiting.length >= queue) throw new ApiError(503, 'RenderingBusy', 'too many images are being rendered; try again shortly', { 'Retry-After': '2' });
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else running++;
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/**
 * The bytes of `spans`, in one buffer that is the whole of its own
 * ArrayBuffer, so the pixel pool can move it to a worker instead of copying.
 */
async function readSpans(blobs: BlobStore, key: string, spans: Span[]): Promise<Buffer> {
  const ranges = spans.filter((s) => s.length).map((s) => ({ start: s.offset, end: s.offset + s.length - 1 }));
  const out = Buffer.allocUnsafeSlow(ranges.reduce((n, r) => n + r.end - r.start + 1, 0));
  let at = 0;
  for await (const c of await readRanges(blobs, key, ranges)) at += (c as Buffer).copy(out, at);
  // A blob shorter than its index says gives a short frame, which decoding answers as truncated pixel data.
  return at === out.length ? out : out.subarray(0, at);
}

/** A top-level bulk data element of the instance, in little-endian order. */
async function readBulk(deps: RenderDeps, row: RenderableInstance, tag: string): Promise<Buffer | undefined> {
  const el = row.bulk[tag];
  if (!el) return undefined;
  const bytes = await readSpans(deps.blobs, row.blobKey, [el]);
  if (!transferSyntax(row.transferSyntaxUid).littleEndian && el.vr === 'OW') bytes.swap16();
  return bytes;
}
