import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobInfo, BlobStore, ByteRange } from './blob-store.js';

/**
 * Filesystem blob store: the zero-config default. A put writes a temporary
 * file, fsyncs it and renames it into place, so a blob is either whole or
 * absent after a crash.
 */
export function createFsBlobStore(root: string): BlobStore {
  const resolve = (key: string): string => {
    const full = path.resolve(root, key);
    if (!full.startsWith(path.resolve(root) + path.sep)) throw new Error(`blob key escapes the store: ${key}`);
    return full;
  };

  return {
    async put(key, body) {
      const target = resolve(key);
      await fsp.mkdir(path.dirname(target), { recursive: true });
      if (body.destroyed) throw body.errored ?? new Error('the blob stream was aborted');
      const tmp = `${target}.${randomUUID()}.tmp`;
      const out = fs.createWriteStream(tmp, { flags: 'wx' });
      try {
        await pipeline(body, out);
        const fh = await fsp.open(tmp, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fsp.rename(tmp, target);
        // The rename is durable only once the directory entry is on disk.
        const dir = await fsp.open(path.dirname(target), 'r');
        try {
          await dir.sync();
        } finally {
          await dir.close();
        }
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw err;
      }
      return { size: out.bytesWritten };
    },

    async get(key, range?: ByteRange) {
      const file = resolve(key);
      // Open first so a missing blob rejects here, not later mid-stream.
      const fh = await fsp.open(file, 'r');
      return fh.createReadStream(range ? { start: range.start, end: range.end, highWaterMark: 256 * 1024 } : { highWaterMark: 256 * 1024 }) as Readable;
    },

    async delete(key) {
      await fsp.rm(resolve(key), { force: true });
    },

    async *list(prefix): AsyncIterable<BlobInfo> {
      const base = resolve(prefix.endsWith('/') ? prefix : `${prefix}/`);
      yield* walk(base, path.resolve(root));
    },

    async ping() {
      await fsp.mkdir(root, { recursive: true });
      await fsp.access(root, fs.constants.W_OK);
    },
  };
}

async function* walk(dir: string, root: string): AsyncIterable<BlobInfo> {
  let entries: fs.Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      yield* walk(full, root);
    } else if (e.isFile()) {
      const st = await fsp.stat(full);
      yield { key: path.relative(root, full).split(path.sep).join('/'), size: st.size, modified: st.mtime };
    }
  }
}
