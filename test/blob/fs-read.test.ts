import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBlobMissing, type BlobStore } from '../../server/blob/blob-store.js';
import { createFsBlobStore } from '../../server/blob/fs.js';

// The filesystem store keeps recently read blobs open, so a hot blob is read
// without opening it again; a deleted blob is never read from a kept descriptor.

let dir: string;
let store: BlobStore;
const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i & 0xff));

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-fs-read-'));
  store = createFsBlobStore(dir);
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** How many descriptors of this process are open on files under the store's folder. */
function openUnder(): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch {
      // closed while listed
    }
  }
  return n;
}

const put = (key: string) => store.put(key, Readable.from([bytes]));

describe('reads of the filesystem store', () => {
  it('open a blob read again only once', async () => {
    await put('instances/hot.dcm');
    for (let i = 0; i < 5; i++) expect((await store.read('instances/hot.dcm', 16, undefined, i * 16)).equals(bytes.subarray(i * 16, i * 16 + 16))).toBe(true);
    expect(openUnder()).toBe(1);
  });

  it('never read a deleted blob from a kept descriptor', async () => {
    await put('instances/gone.dcm');
    expect((await store.read('instances/gone.dcm', bytes.length)).equals(bytes)).toBe(true);
    await store.delete('instances/gone.dcm');
    const err = await store.read('instances/gone.dcm', bytes.length).catch((e: unknown) => e);
    expect(isBlobMissing(err)).toBe(true);
  });

  it('keep at most 64 blobs open, closing the least recently read', async () => {
    for (let i = 0; i < 80; i++) await put(`instances/many-${i}.dcm`);
    for (let i = 0; i < 80; i++) await store.read(`instances/many-${i}.dcm`, 8);
    await new Promise((r) => setTimeout(r, 50));
    expect(openUnder()).toBe(64);
  });
});
