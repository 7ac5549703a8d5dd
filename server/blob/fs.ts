import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { BlobInfo, BlobStore, ByteRange } from './blob-store.js';

const fdOpen = promisify(fs.open);
const fdClose = promisify(fs.close);
const fdRead = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((res, rej) => fs.read(fd, buf, offset, length, position, (err, n) => (err ? rej(err) : res(n))));

/** Bytes gathered before one write: few, large writes keep the thread pool free for fsyncs. */
const WRITE_BATCH = 1024 * 1024;

/**
 * Filesystem blob store: the zero-config default. A put writes a temporary
 * file, fsyncs it, renames it into place and fsyncs the directory, so a blob
 * is either whole or absent after a crash, and present once put resolves.
 */
export function createFsBlobStore(root: string): BlobStore {
  const base = path.resolve(root);
  const resolve = (key: string): string => {
    const full = path.resolve(base, key);
    if (!full.startsWith(base + path.sep)) throw new Error(`blob key escapes the store: ${key}`);
    return full;
  };
  const knownDirs = new Set<string>();
  const dirSync = directorySyncer();
  const open = new OpenFiles();

  return {
    async put(key, body) {
      const target = resolve(key);
      const dir = path.dirname(target);
      if (!knownDirs.has(dir)) {
        await fsp.mkdir(dir, { recursive: true });
        knownDirs.add(dir);
      }
      if (body.destroyed) throw body.errored ?? new Error('the blob stream was aborted');
      const tmp = `${target}.${randomUUID()}.tmp`;
      const fh = await fsp.open(tmp, 'wx');
      let size = 0;
      try {
        let batch: Buffer[] = [];
        let batched = 0;
        for await (const chunk of body as AsyncIterable<Buffer>) {
          batch.push(chunk);
          batched += chunk.length;
          if (batched >= WRITE_BATCH) {
            size += await writeAll(fh, batch);
            batch = [];
            batched = 0;
          }
        }
        size += await writeAll(fh, batch);
        await fh.sync();
        await fh.close();
        await fsp.rename(tmp, target);
        // The rename is durable only once the directory entry is on disk.
        await dirSync(dir);
      } catch (err) {
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
        throw err;
      }
      return { size };
    },

    async get(key, range?: ByteRange) {
      // Open first so a missing blob rejects here, not later mid-stream.
      const fh = await fsp.open(resolve(key), 'r');
      const opts = range ? { start: range.start, end: range.end } : {};
      return fh.createReadStream({ ...opts, highWaterMark: 256 * 1024 }) as Readable;
    },

    async read(key, size, into, offset = 0) {
      // With the size known from the index: one read on a plain descriptor
      // (cheaper than FileHandle objects on this hot path), kept open for the
      // next read of the same blob (the frames of a series a viewer scrolls).
      const lease = open.acquire(key, () => resolve(key));
      try {
        const fd = await lease.fd;
        const buf = into ?? Buffer.allocUnsafe(size);
        let got = 0;
        while (got < size) {
          const bytesRead = await fdRead(fd, buf, got, size - got, offset + got);
          if (bytesRead === 0) throw new Error(`blob ${key} is shorter than its recorded ${offset + size} bytes`);
          got += bytesRead;
        }
        return buf;
      } finally {
        open.release(lease);
      }
    },

    async delete(key) {
      // Forgotten before the unlink: no read that starts after this sees the blob.
      open.forget(key);
      await fsp.rm(resolve(key), { force: true });
    },

    async *list(prefix): AsyncIterable<BlobInfo> {
      yield* walk(resolve(prefix.endsWith('/') ? prefix : `${prefix}/`), base);
    },

    async ping() {
      await fsp.mkdir(base, { recursive: true });
      await fsp.access(base, fs.constants.W_OK);
    },
  };
}

/** How many blobs stay open for reads, and how long one unread stays open. */
const OPEN_FILES = 64;
const OPEN_IDLE_MS = 5_000;

/**
 * Open descriptors of recently read blobs, so that reading a hot blob again
 * (the next frame, the same series) costs one read instead of open, read and
 * close, each a trip through the thread pool. A key names one blob for good
 * (keys are never reused), so a kept descriptor cannot show other bytes;
 * delete() forgets the key before it unlinks the file. At most OPEN_FILES
 * are kept, least recently used closed first, and one unread for
 * OPEN_IDLE_MS is closed, so a blob another process deleted does not keep
 * its disk space for long. A descriptor is closed only once no read uses it.
 */
interface OpenFile {
  fd: Promise<number>;
  users: number;
  kept: boolean;
  used: number;
}

class OpenFiles {
  private readonly files = new Map<string, OpenFile>();
  private sweeper?: NodeJS.Timeout;

  /** The blob's descriptor, opened now or kept from an earlier read; give it back with release(). */
  acquire(key: string, file: () => string): OpenFile {
    let entry = this.files.get(key);
    if (entry) {
      // Most recently used last: a Map keeps insertion order.
      this.files.delete(key);
    } else {
      const made: OpenFile = { fd: fdOpen(file(), 'r'), users: 0, kept: true, used: 0 };
      // A failed open (a missing blob) is not kept.
      made.fd.catch(() => this.forget(key, made));
      entry = made;
    }
    entry.users++;
    entry.used = Date.now();
    this.files.set(key, entry);
    this.trim();
    return entry;
  }

  release(entry: OpenFile): void {
    entry.users--;
    this.closeIfDone(entry);
  }

  /** Keeps the blob's descriptor no longer (`only` that one, if given); it is closed once no read uses it. */
  forget(key: string, only?: OpenFile): void {
    const entry = this.files.get(key);
    if (!entry || (only && entry !== only)) return;
    this.files.delete(key);
    entry.kept = false;
    this.closeIfDone(entry);
  }

  private closeIfDone(entry: OpenFile): void {
    if (entry.kept || entry.users > 0) return;
    entry.fd.then(
      (fd) => fdClose(fd).catch(() => undefined),
      () => undefined,
    );
  }

  private trim(): void {
    for (const key of this.files.keys()) {
      if (this.files.size <= OPEN_FILES) break;
      this.forget(key);
    }
    if (!this.sweeper && this.files.size) {
      this.sweeper = setInterval(() => this.sweep(), OPEN_IDLE_MS);
      this.sweeper.unref();
    }
  }

  private sweep(): void {
    const old = Date.now() - OPEN_IDLE_MS;
    for (const [key, entry] of this.files) if (entry.used < old) this.forget(key);
    if (!this.files.size) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

async function writeAll(fh: fsp.FileHandle, chunks: Buffer[]): Promise<number> {
  if (!chunks.length) return 0;
  let total = chunks.reduce((n, c) => n + c.length, 0);
  const expected = total;
  while (total > 0) {
    const { bytesWritten } = await fh.writev(chunks);
    total -= bytesWritten;
    if (total > 0) {
      // A short write: continue after what was written.
      let skip = bytesWritten;
      while (skip >= chunks[0].length) skip -= chunks.shift()!.length;
      chunks[0] = chunks[0].subarray(skip);
    }
  }
  return expected;
}

/**
 * Group commit for directory fsyncs: a caller waits for a sync that starts
 * after its rename, and every rename done before that sync started shares it.
 */
function directorySyncer(): (dir: string) => Promise<void> {
  const queued = new Map<string, { started: boolean; done: Promise<void> }>();
  return (dir) => {
    const current = queued.get(dir);
    if (current && !current.started) return current.done;
    const entry = { started: false, done: Promise.resolve() };
    entry.done = (current ? current.done.catch(() => undefined) : Promise.resolve()).then(async () => {
      entry.started = true;
      if (queued.get(dir) === entry) queued.delete(dir);
      const d = await fsp.open(dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    });
    queued.set(dir, entry);
    return entry.done;
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
