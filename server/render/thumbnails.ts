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

/**
 * The representative image: the middle instance of the first series that has
 * images, and its middle frame. Undefined when nothing there is an image.
 */
export function representative(candidates: ThumbnailCandidate[]): { instance: ThumbnailCandidate; frame: number } | undefined {
  const images = candidates.filter((c) => c.rows);
  if (!images.length) return undefined;
  const series = images.filter((c) => c.seriesUid === images[0].seriesUid);
  const instance = series[Math.floor((series.length - 1) / 2)];
  return { instance, frame: Math.ceil(Math.max(1, instance.numberOfFrames ?? 1) / 2) };
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
