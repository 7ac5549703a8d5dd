import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore, ByteRange } from '../../server/blob/blob-store.js';
import { readRanges } from '../../server/blob/spans.js';
import { createTestArchive, type TestArchive } from '../helpers.js';

let a: TestArchive;
const bytes = Buffer.alloc(700 * 1024);
for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 9)) & 0xff;
const key = 'instances/spans/test.dcm';

beforeAll(async () => {
  a = await createTestArchive();
  await a.deps.blobs.put(key, Readable.from([bytes]));
});
afterAll(async () => {
  await a?.close();
});

/** The project's blob store, counting its ranged reads. */
function counting(): { store: BlobStore; gets: ByteRange[] } {
  const gets: ByteRange[] = [];
  return {
    gets,
    store: {
      ...a.deps.blobs,
      get: (k, r) => {
        gets.push(r!);
        return a.deps.blobs.get(k, r);
      },
    },
  };
}

async function all(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c);
  return Buffer.concat(out);
}

const expected = (ranges: ByteRange[]) => Buffer.concat(ranges.map((r) => bytes.subarray(r.start, r.end + 1)));

describe('readRanges', () => {
  it('reads fragments a few bytes apart with one ranged read, across chunk boundaries, dropping the bytes between', async () => {
    const ranges = [
      { start: 100, end: 262_150 },
      { start: 262_159, end: 262_200 },
      { start: 262_209, end: 600_000 },
      { start: 600_008, end: 600_008 },
    ];
    const c = counting();
    expect(Buffer.compare(await all(await readRanges(c.store, key, ranges)), expected(ranges))).toBe(0);
    expect(c.gets).toEqual([{ start: 100, end: 600_008 }]);
  });

  it('reads ranges far apart separately', async () => {
    const ranges = [
      { start: 0, end: 9 },
      { start: 200_000, end: 200_009 },
      { start: 200_020, end: 200_029 },
    ];
    const c = counting();
    expect(Buffer.compare(await all(await readRanges(c.store, key, ranges)), expected(ranges))).toBe(0);
    expect(c.gets).toEqual([
      { start: 0, end: 9 },
      { start: 200_000, end: 200_029 },
    ]);
  });

  it('gives an empty body for no ranges', async () => {
    expect((await all(await readRanges(a.deps.blobs, key, []))).length).toBe(0);
  });
});

describe('read at an offset', () => {
  it('gives the bytes from there, whole, and into a buffer given', async () => {
    expect((await a.deps.blobs.read(key, 1000, undefined, 300_000)).equals(bytes.subarray(300_000, 301_000))).toBe(true);
    const into = Buffer.alloc(4096);
    expect(await a.deps.blobs.read(key, 4096, into, 1)).toBe(into);
    expect(into.equals(bytes.subarray(1, 4097))).toBe(true);
  });

  it('refuses a span that runs past the end of the blob', async () => {
    await expect(a.deps.blobs.read(key, 100, undefined, bytes.length - 10)).rejects.toThrow(/shorter|longer|range|invalid/i);
  });
});
