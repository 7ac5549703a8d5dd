import zlib from 'node:zlib';

// A streaming zip writer (PKWARE APPNOTE 6.3.x) for the export download:
// entries are stored (method 0, no compression: DICOM pixel data is mostly
// compressed already, and stored entries cost no CPU), each written as its
// bytes arrive, its CRC-32 and sizes in a data descriptor after it (§4.3.9),
// so nothing is buffered beyond the chunk in hand. Every entry carries the
// ZIP64 extra field (§4.5.3), so an entry or an archive past 4 GiB needs no
// second pass; the central directory and end records use the ZIP64 forms
// only where a value does not fit (or always, with `zip64: 'always'`).

/** One file of the archive: its path inside it (forward slashes) and its bytes, opened when its turn comes. */
export interface ZipEntry {
  name: string;
  body: () => Promise<Buffer | AsyncIterable<Uint8Array> | Iterable<Uint8Array>>;
}

export interface ZipOptions {
  /** The modification time written for every entry (default: now). */
  modified?: Date;
  /** 'always' writes the ZIP64 central directory forms for every entry and the archive (for readers' tests). */
  zip64?: 'auto' | 'always';
}

const MAX32 = 0xffffffff;
const MAX16 = 0xffff;
/** APPNOTE §4.4.3: 4.5 is the version that knows ZIP64. */
const VERSION = 45;
/** General purpose flags: bit 3, sizes and CRC in a data descriptor; bit 11, names in UTF-8 (APPNOTE Appendix D). */
const FLAGS = 0x0808;

interface Written {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
}

/** The archive's bytes, entry after entry, then the central directory. */
export async function* zipStream(entries: AsyncIterable<ZipEntry> | Iterable<ZipEntry>, options: ZipOptions = {}): AsyncGenerator<Buffer> {
  const { time, date } = dosTime(options.modified ?? new Date());
  const always = options.zip64 === 'always';
  const written: Written[] = [];
  let offset = 0;
  for await (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const head = localHeader(name, time, date);
    yield head;
    const start = offset;
    offset += head.length;
    let crc = 0;
    let size = 0;
    const body = await entry.body();
    for await (const chunk of Buffer.isBuffer(body) ? [body] : body) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (!b.length) continue;
      crc = crc32(b, crc);
      size += b.length;
      yield b;
    }
    offset += size;
    const descriptor = dataDescriptor(crc, size);
    yield descriptor;
    offset += descriptor.length;
    written.push({ name, crc, size, offset: start });
  }
  const cdStart = offset;
  for (const w of written) {
    const c = centralHeader(w, time, date, always);
    yield c;
    offset += c.length;
  }
  const cdSize = offset - cdStart;
  const needs64 = always || written.length >= MAX16 || cdStart >= MAX32 || cdSize >= MAX32;
  if (needs64) {
    yield zip64End(written.length, cdSize, cdStart);
    yield zip64Locator(offset);
  }
  yield end(needs64 ? MAX16 : written.length, needs64 ? MAX32 : cdSize, needs64 ? MAX32 : cdStart);
}

/** APPNOTE §4.3.7, with the ZIP64 extra field (§4.5.3) whose sizes are in the data descriptor. */
function localHeader(name: Buffer, time: number, date: number): Buffer {
  const b = Buffer.alloc(30 + name.length + 20);
  b.writeUInt32LE(0x04034b50, 0);
  b.writeUInt16LE(VERSION, 4);
  b.writeUInt16LE(FLAGS, 6);
  b.writeUInt16LE(0, 8);
  b.writeUInt16LE(time, 10);
  b.writeUInt16LE(date, 12);
  b.writeUInt32LE(0, 14);
  // §4.4.8: with ZIP64 the sizes here are 0xFFFFFFFF and the extra field's are the real ones (zero, here: they follow in the descriptor).
  b.writeUInt32LE(MAX32, 18);
  b.writeUInt32LE(MAX32, 22);
  b.writeUInt16LE(name.length, 26);
  b.writeUInt16LE(20, 28);
  name.copy(b, 30);
  const x = 30 + name.length;
  b.writeUInt16LE(0x0001, x);
  b.writeUInt16LE(16, x + 2);
  return b;
}

/** APPNOTE §4.3.9: the ZIP64 form (8-byte sizes), as the local header's ZIP64 extra field announces. */
function dataDescriptor(crc: number, size: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0x08074b50, 0);
  b.writeUInt32LE(crc >>> 0, 4);
  b.writeBigUInt64LE(BigInt(size), 8);
  b.writeBigUInt64LE(BigInt(size), 16);
  return b;
}

/** APPNOTE §4.3.12; the ZIP64 extra field holds, in order, the sizes and offset that do not fit (§4.5.3). */
function centralHeader(w: Written, time: number, date: number, always: boolean): Buffer {
  const big = always || w.size >= MAX32;
  const far = always || w.offset >= MAX32;
  const extra: bigint[] = [];
  if (big) extra.push(BigInt(w.size), BigInt(w.size));
  if (far) extra.push(BigInt(w.offset));
  const extraLength = extra.length ? 4 + 8 * extra.length : 0;
  const b = Buffer.alloc(46 + w.name.length + extraLength);
  b.writeUInt32LE(0x02014b50, 0);
  b.writeUInt16LE(VERSION, 4);
  b.writeUInt16LE(VERSION, 6);
  b.writeUInt16LE(FLAGS, 8);
  b.writeUInt16LE(0, 10);
  b.writeUInt16LE(time, 12);
  b.writeUInt16LE(date, 14);
  b.writeUInt32LE(w.crc >>> 0, 16);
  b.writeUInt32LE(big ? MAX32 : w.size, 20);
  b.writeUInt32LE(big ? MAX32 : w.size, 24);
  b.writeUInt16LE(w.name.length, 28);
  b.writeUInt16LE(extraLength, 30);
  // Comment length, disk number start, internal attributes: 0.
  b.writeUInt32LE(0, 38);
  b.writeUInt32LE(far ? MAX32 : w.offset, 42);
  w.name.copy(b, 46);
  if (extra.length) {
    let x = 46 + w.name.length;
    b.writeUInt16LE(0x0001, x);
    b.writeUInt16LE(8 * extra.length, x + 2);
    x += 4;
    for (const v of extra) {
      b.writeBigUInt64LE(v, x);
      x += 8;
    }
  }
  return b;
}

/** APPNOTE §4.3.14. */
function zip64End(entries: number, cdSize: number, cdStart: number): Buffer {
  const b = Buffer.alloc(56);
  b.writeUInt32LE(0x06064b50, 0);
  b.writeBigUInt64LE(44n, 4);
  b.writeUInt16LE(VERSION, 12);
  b.writeUInt16LE(VERSION, 14);
  b.writeBigUInt64LE(BigInt(entries), 24);
  b.writeBigUInt64LE(BigInt(entries), 32);
  b.writeBigUInt64LE(BigInt(cdSize), 40);
  b.writeBigUInt64LE(BigInt(cdStart), 48);
  return b;
}

/** APPNOTE §4.3.15: where the ZIP64 end record starts. */
function zip64Locator(at: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x07064b50, 0);
  b.writeBigUInt64LE(BigInt(at), 8);
  b.writeUInt32LE(1, 16);
  return b;
}

/** APPNOTE §4.3.16. */
function end(entries: number, cdSize: number, cdStart: number): Buffer {
  const b = Buffer.alloc(22);
  b.writeUInt32LE(0x06054b50, 0);
  b.writeUInt16LE(entries, 8);
  b.writeUInt16LE(entries, 10);
  b.writeUInt32LE(cdSize, 12);
  b.writeUInt32LE(cdStart, 16);
  return b;
}

/** MS-DOS date and time (APPNOTE §4.4.6), local time as zip readers show it. */
function dosTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getFullYear());
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

// zlib.crc32 arrived in Node 20.15; earlier 20.x releases get the table form.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let table: Uint32Array | undefined;

export function crc32(data: Uint8Array, value = 0): number {
  if (nativeCrc32) return nativeCrc32(data, value);
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = ~value >>> 0;
  for (const byte of data) c = table[(c ^ byte) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
