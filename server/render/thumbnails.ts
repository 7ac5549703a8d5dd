import { Readable } from 'node:stream';
import { isBlobMissing, type BlobStore } from '../blob/blob-store.js';
import type { ThumbnailCandidate } from '../db/lookup.js';
import type { RenderedType, Viewport } from './encode.js';

// Thumbnails (PS3.18 §10.4.1.1.4): one small image of a representative frame,
// kept in the blob store after it is first made, under a key Cairn builds
// from the instance's own blob key and the validated size, never from a
// client string. The cached images of an instance go when it does.

/** A size fit for a study browser when no viewport is given. */
export const THUMBNAIL_SIZE = 128;

const PREFIX = 'thumbnails/';

/** How many instances a thumbnail tries before it gives up: the representative one and up to three more. */
export const THUMBNAIL_TRIES = 4;

/**
 * The images a thumbnail tries in turn, at most `limit`: the representative
 * one first (the middle instance of the first series that has images, and its
 * middle frame), then the other instances of its series nearest the middle, then
 * those of the following series. An instance whose frames Cairn cannot decode
 * (a transfer syntax or bit depth without a codec) gives way to the next.
 */
export function representatives(candidates: ThumbnailCandidate[], limit = THUMBNAIL_TRIES): { instance: ThumbnailCandidate; frame: number }[] {
  const bySeries = new Map<string, ThumbnailCandidate[]>();
  for (const c of candidates) {
    if (!c.rows) continue;
    const list = bySeries.get(c.seriesUid);
    if (list) list.push(c);
    else bySeries.set(c.seriesUid, [c]);
  }
  const ordered: ThumbnailCandidate[] = [];
  for (const series of bySeries.values()) {
    const mid = Math.floor((series.length - 1) / 2);
    // mid, mid+1, mid-1, mid+2, …: the nearest to the middle first, the later one of a pair before the earlier.
    const near = series.map((c, i) => ({ c, d: Math.abs(i - mid) * 2 - (i > mid ? 1 : 0) })).sort((x, y) => x.d - y.d);
    for (const { c } of near) ordered.push(c);
    if (ordered.length >= limit) break;
  }
  return ordered.slice(0, limit).map((instance) => ({ instance, frame: Math.ceil(Math.max(1, instance.numberOfFrames ?? 1) / 2) }));
}

/** The cache key of one thumbnail of an instance's frame. */
export function thumbnailKey(blobKey: string, frame: number, viewport: Viewport, type: RenderedType): string {
  const s = viewport.source;
  const region = s ? `-${s.x}_${s.y}_${s.width}_${s.height}` : '';
  return `${PREFIX}${blobKey}/${frame}-${viewport.width}x${viewport.height}${region}.${type.slice('image/'.length)}`;
}

/** A cached thumbnail, or undefined when there is none yet. */
export async function cachedThumbnail(blobs: BlobStore, key: string): Promise<Buffer | undefined> {
  try {
    const chunks: Buffer[] = [];
    for await (const c of await blobs.get(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  } catch (err) {
    if (isBlobMissing(err)) return undefined;
    throw err;
  }
}

export async function cacheThumbnail(blobs: BlobStore, key: string, image: Buffer): Promise<void> {
  await blobs.put(key, Readable.from([image]));
}

/** Deletes every cached thumbnail of the instance stored under `blobKey`. */
export async function dropThumbnails(blobs: BlobStore, blobKey: string): Promise<void> {
  const keys: string[] = [];
  for await (const b of blobs.list(`${PREFIX}${blobKey}/`)) keys.push(b.key);
  for (const k of keys) await blobs.delete(k);
}
