import type { Sharp } from 'sharp';
import { ApiError } from '../errors.js';
import { lowerLibvipsThreads } from '../pixels/priority.js';
import type { RenderedPixels } from './pipeline.js';

// Encoding and resizing of rendered pixels with sharp (libvips), which does
// its work on libuv's thread pool and libvips' own threads, off the event
// loop; those threads run at the low priority of pixel work (priority.ts).

/** The rendered media types Cairn makes (PS3.18 §8.7.4, Table 8.7.4-1). */
export const RENDERED_TYPES = ['image/jpeg', 'image/png', 'image/gif'] as const;
export type RenderedType = (typeof RENDERED_TYPES)[number];

/** PS3.18 §8.3.5.1.3: the size of the output, and optionally the region of the image shown in it (sw or sh negative: flipped). */
export interface Viewport {
  width: number;
  height: number;
  source?: { x: number; y: number; width: number; height: number };
}

export interface EncodeOptions {
  type: RenderedType;
  viewport?: Viewport;
  /** PS3.18 §8.3.5.1.2: 1-100, for lossy media types. */
  quality?: number;
}

const MAX_SIDE = 8192;

/** The `viewport` query parameter: vw,vh[,sx,sy,sw,sh]. */
export function parseViewport(value: string | undefined): Viewport | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',').map((s) => s.trim());
  const nums = parts.map((s) => (s === '' ? Number.NaN : Number(s)));
  const bad = () => new ApiError(400, 'InvalidViewport', `viewport "${value}" must be vw,vh or vw,vh,sx,sy,sw,sh with vw and vh from 1 to ${MAX_SIDE}`);
  if ((nums.length !== 2 && nums.length !== 6) || !nums.every(Number.isInteger)) throw bad();
  const [width, height, x, y, sw, sh] = nums;
  if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) throw bad();
  if (nums.length === 2) return { width, height };
  if (x < 0 || y < 0 || sw === 0 || sh === 0) throw bad();
  return { width, height, source: { x, y, width: sw, height: sh } };
}

/** The `quality` query parameter: an integer from 1 to 100. */
export function parseQuality(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const q = Number(value);
  if (!Number.isInteger(q) || q < 1 || q > 100) throw new ApiError(400, 'InvalidQuality', `quality "${value}" must be an integer from 1 to 100`);
  return q;
}

/** The part of the image a viewport shows, and whether it is flipped (negative source width or height). */
function regionOf(p: RenderedPixels, v: Viewport | undefined) {
  const s = v?.source;
  if (!s) return { left: 0, top: 0, width: p.width, height: p.height, flop: false, flip: false };
  // A negative extent counts back from the given corner.
  const left = s.width < 0 ? s.x + s.width : s.x;
  const top = s.height < 0 ? s.y + s.height : s.y;
  const r = { left: Math.max(0, left), top: Math.max(0, top), flop: s.width < 0, flip: s.height < 0, width: 0, height: 0 };
  r.width = Math.min(p.width, left + Math.abs(s.width)) - r.left;
  r.height = Math.min(p.height, top + Math.abs(s.height)) - r.top;
  if (r.width < 1 || r.height < 1) throw new ApiError(400, 'InvalidViewport', `the viewport's source region lies outside the ${p.width}×${p.height} image`);
  return r;
}

// sharp (libvips, about 20 MB resident) is loaded with the first image made,
// so an archive that never renders does not carry it.
let sharpModule: Promise<typeof import('sharp')> | undefined;
/**
 * sharp itself. The pixel pool's workers encode with it too, and on glibc
 * Linux the main thread must hold libvips loaded before a worker does, so
 * that a worker's exit never unloads it under the others (sharp's
 * documentation on worker threads): the pool loads it here first.
 */
export async function loadSharp(): Promise<typeof import('sharp')['default']> {
  sharpModule ??= import('sharp').then((m) => {
    // libvips' operation cache (up to 50 MB by default) only pays when the same
    // pipeline runs again on the same input; every image here is made from new
    // raw pixels, so it would hold memory and never hit. It is process-wide.
    m.default.cache(false);
    return m;
  });
  return (await sharpModule).default;
}

/** One rendered frame as a sharp pipeline: cropped and flipped as the viewport says, scaled to fit it keeping aspect ratio. */
async function shaped(p: RenderedPixels, v: Viewport | undefined): Promise<Sharp> {
  const sharp = await loadSharp();
  const r = regionOf(p, v);
  let img = sharp(p.data, { raw: { width: p.width, height: p.height, channels: p.channels } });
  if (r.left || r.top || r.width !== p.width || r.height !== p.height) img = img.extract({ left: r.left, top: r.top, width: r.width, height: r.height });
  if (r.flop) img = img.flop();
  if (r.flip) img = img.flip();
  if (v) img = img.resize(v.width, v.height, { fit: 'inside', kernel: 'lanczos3' });
  // One channel stays one channel: a grey JPEG or PNG, not three equal ones.
  return p.channels === 1 ? img.toColourspace('b-w') : img;
}

/** Encodes one rendered frame. */
export async function encodeFrame(p: RenderedPixels, o: EncodeOptions): Promise<Buffer> {
  const img = await shaped(p, o.viewport);
  let out: Buffer;
  if (o.type === 'image/png') out = await img.png({ compressionLevel: 6 }).toBuffer();
  else if (o.type === 'image/gif') out = await img.gif().toBuffer();
  // The standard Huffman tables of ISO 10918-1 Annex K: optimised tables save a tenth of the bytes for twice the CPU.
  else out = await img.jpeg({ quality: o.quality ?? 90, optimiseCoding: false }).toBuffer();
  lowerLibvipsThreads();
  return out;
}

/** Several rendered frames of one size as an animated GIF (PS3.18 §8.7.4: image/gif may hold several frames). */
export async function encodeAnimation(frames: RenderedPixels[], o: EncodeOptions & { delayMs?: number }): Promise<Buffer> {
  if (frames.length === 1) return encodeFrame(frames[0], o);
  // Each frame is cropped and scaled alone, then the pages are stacked: libvips animates a tall image of equal pages.
  const pages = await Promise.all(frames.map(async (p) => (await shaped(p, o.viewport)).raw().toBuffer({ resolveWithObject: true })));
  const { width, height, channels } = pages[0].info;
  const all = Buffer.concat(pages.map((x) => x.data));
  const sharp = await loadSharp();
  const out = await sharp(all, { raw: { width, height: height * frames.length, channels: channels as 1 | 3, pageHeight: height } })
    .gif({ loop: 0, delay: Array(frames.length).fill(o.delayMs ?? 100) })
    .toBuffer();
  lowerLibvipsThreads();
  return out;
}
