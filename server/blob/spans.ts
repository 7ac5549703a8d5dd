import { Readable } from 'node:stream';
import type { BlobStore, ByteRange } from './blob-store.js';

/** Ranges this close together are fetched with one read and the bytes between them dropped. */
const MAX_GAP = 64 * 1024;

/**
 * Several byte ranges of one blob (the fragments of an encapsulated frame,
 * with their 8-byte item headers between them) as one stream. Ranges close
 * together are read with one ranged request, which on S3 is one round trip
 * instead of one per fragment. The first read is opened before this
 * resolves, so a store that is down fails the caller, not the stream; a
 * body closed before it was read closes that read too.
 */
export async function readRanges(blobs: BlobStore, key: string, ranges: ByteRange[]): Promise<Readable> {
  const groups: ByteRange[][] = [];
  for (const r of ranges) {
    const last = groups[groups.length - 1];
    const prev = last?.[last.length - 1];
    if (prev && r.start > prev.end && r.start - prev.end - 1 <= MAX_GAP) last.push(r);
    else groups.push([r]);
  }
  const read = (g: ByteRange[]) => blobs.get(key, { start: g[0].start, end: g[g.length - 1].end });
  const first = groups.length ? await read(groups[0]) : undefined;
  const body = Readable.from(
    (async function* () {
      for (const [i, g] of groups.entries()) {
        const src = i === 0 ? first! : await read(g);
        yield* g.length === 1 ? src : pick(src, g);
      }
    })(),
    { objectMode: false },
  );
  body.once('close', () => first?.destroy());
  return body;
}

/** The bytes of `ranges` out of a stream that starts at ranges[0].start (ranges ascending, apart). */
async function* pick(src: AsyncIterable<Buffer>, ranges: ByteRange[]): AsyncGenerator<Buffer> {
  let pos = ranges[0].start;
  let i = 0;
  for await (const chunk of src) {
    let off = 0;
    while (i < ranges.length && off < chunk.length) {
      const r = ranges[i];
      const at = pos + off;
      if (at < r.start) {
        off += Math.min(r.start - at, chunk.length - off);
        continue;
      }
      const take = Math.min(r.end + 1 - at, chunk.length - off);
      yield chunk.subarray(off, off + take);
      off += take;
      if (at + take > r.end) i++;
    }
    pos += chunk.length;
  }
}
