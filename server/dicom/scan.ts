import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw } from 'node:zlib';
import { ByteReader } from './byte-reader.js';
import { decodeText, needsCharsetDecoding } from './charset.js';
import { Tag, VALID_VRS, vrOf } from './tags.js';
import { EXPLICIT_VR_LE, IMPLICIT_VR_LE, transferSyntax } from './transfer-syntax.js';

// A streaming walk over a Part-10 file (PS3.10 §7.1, PS3.5 §7) that keeps
// only the header: small elements are copied into a compact Part-10 buffer
// for dcmjs, while pixel data and other large top-level binary values are
// skipped and recorded as byte ranges of the stored blob.

export class NotDicomError extends Error {}
export class UnsupportedError extends Error {}
export class TooLargeError extends Error {}
/** The data set is more complex than the configured limits allow (nesting depth, element count). */
export class LimitError extends Error {}

export interface ScanOptions {
  bulkThreshold: number;
  maxHeaderBytes: number;
  /** Most sequences one element may sit inside (PS3.5 §7.5 sets no bound; Cairn does). */
  maxSequenceDepth: number;
  /** Most data elements, sequence items and pixel data fragments in one instance. */
  maxDataElements: number;
}

export interface ByteSpan {
  offset: number;
  length: number;
}

export interface BulkElement extends ByteSpan {
  vr: string;
}

export interface PixelData {
  vr: string;
  encapsulated: boolean;
  /** Native: the value. Encapsulated: each fragment after the offset table. */
  fragments: ByteSpan[];
  /** Basic Offset Table (PS3.5 §A.4), empty when absent. */
  offsetTable: number[];
  /** First bytes of each fragment, to find frame starts when there is no table. */
  heads: Buffer[];
  /** Offset of the first fragment's item tag (offset tables count from here). */
  firstItem: number;
}

export interface ScanResult {
  transferSyntaxUid: string;
  header: Buffer;
  bulk: Record<string, BulkElement>;
  pixelData: PixelData | null;
  /** Specific Character Set (0008,0005) as stored, before any transcoding; null when absent. */
  specificCharacterSet: string[] | null;
  /** The data set is Implicit VR (whatever its transfer syntax claimed): its VRs come from the registry. */
  implicitVr: boolean;
  littleEndian: boolean;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const TEXT_VRS = new Set(['SH', 'LO', 'ST', 'LT', 'UT', 'UC', 'PN']);
const UNDEFINED = 0xffffffff;

interface Header {
  tag: string;
  vr: string;
  length: number;
  raw: Buffer;
}

interface Ctx {
  r: ByteReader;
  explicit: boolean;
  le: boolean;
  out: Buffer[];
  outBytes: number;
  maxHeader: number;
  charsets: string[] | null;
  /** Sequences the element being read sits inside. */
  depth: number;
  maxDepth: number;
  /** Data elements, items and fragments read so far. */
  elements: number;
  maxElements: number;
}

// How many elements are read between two turns of the event loop: a large
// header is read in slices, and other requests are served in between.
const YIELD_EVERY = 2048;

export async function scanPart10(source: AsyncIterable<Buffer>, opts: ScanOptions): Promise<ScanResult> {
  const raw = new ByteReader(source[Symbol.asyncIterator]());
  let r = raw;
  const preamble = await r.peek(132);
  if (preamble.length < 132 || preamble.toString('latin1', 128, 132) !== 'DICM') {
    await r.drain();
    throw new NotDicomError('not a DICOM Part-10 file: no "DICM" prefix after the 128-byte preamble');
  }
  const ctx: Ctx = {
    r,
    explicit: true,
    le: true,
    out: [],
    outBytes: 0,
    maxHeader: opts.maxHeaderBytes,
    charsets: null,
    depth: 0,
    maxDepth: opts.maxSequenceDepth,
    elements: 0,
    maxElements: opts.maxDataElements,
  };
  try {
    const preambleBytes = await r.read(132);
    // File Meta Information: always Explicit VR Little Endian (PS3.10 §7.1).
    const meta: { h: Header; value: Buffer }[] = [];
    let tsUid = '';
    for (;;) {
      const head = await r.peek(2);
      if (head.length < 2 || head.readUInt16LE(0) !== 0x0002) break;
      const h = await readHeader(ctx);
      const value = await r.read(h.length, 'the file meta information');
      if (h.tag === Tag.TransferSyntaxUID) tsUid = value.toString('latin1').replace(/[\0 ]+$/, '');
      meta.push({ h, value });
    }
    if (!tsUid) throw new NotDicomError('the file meta information has no Transfer Syntax UID (0002,0010)');
    // A data set that is itself deflated (PS3.5 §A.5) is walked as it
    // inflates: the offsets recorded for its bulk data and frames then count
    // in the file's inflated form (its meta information followed by the
    // inflated data set), which is what a retrieve reads them from. Deflated
    // Image Frame Compression (…1.2.8.1) deflates only the frames and is read
    // like any encapsulated syntax.
    const syntax = transferSyntax(tsUid);
    if (syntax.deflated && !syntax.servedAsStored) throw new UnsupportedError(`deflated transfer syntax ${tsUid} is not supported`);
    if (syntax.deflated) {
      const inflated = new ByteReader(inflate(r.rest())[Symbol.asyncIterator]());
      inflated.pos = r.pos;
      r = inflated;
      ctx.r = r;
      // The header copy holds the inflated data set, so it says what dcmjs is reading.
      relabel(meta, EXPLICIT_VR_LE);
    }
    ctx.explicit = syntax.explicitVr;
    ctx.le = syntax.littleEndian;
    // Some writers label an Implicit VR data set as explicit (a known fault of
    // older toolkits): when the first element has no valid VR but reads as
    // implicit, read it as implicit, as pydicom and dcm4che do.
    const first = await r.peek(8);
    if (ctx.explicit && ctx.le && first.length === 8 && !VALID_VRS.has(first.toString('latin1', 4, 6))) {
      ctx.explicit = false;
      relabel(meta, IMPLICIT_VR_LE);
    }
    emit(ctx, preambleBytes);
    for (const m of meta) emit(ctx, m.h.raw, m.value);
    const bulk: Record<string, BulkElement> = {};
    let pixelData: PixelData | null = null;
    while (!(await r.atEnd())) {
      const h = await readHeader(ctx);
      if (h.tag === Tag.PixelData) {
        pixelData = await readPixelData(ctx, h);
      } else if (BINARY_VRS.has(h.vr) && h.length !== UNDEFINED && h.length > opts.bulkThreshold) {
        bulk[h.tag] = { offset: r.pos, length: h.length, vr: h.vr };
        await r.discard(h.length);
      } else {
        await copyElement(ctx, h);
      }
    }
    return {
      transferSyntaxUid: tsUid,
      header: Buffer.concat(ctx.out),
      bulk,
      pixelData,
      specificCharacterSet: ctx.charsets,
      implicitVr: !ctx.explicit,
      littleEndian: ctx.le,
    };
  } catch (err) {
    // An inflating reader fails again on the data that made it fail; the
    // stream under it is read to its end either way.
    await r.drain().catch(() => undefined);
    if (r !== raw) await raw.drain().catch(() => undefined);
    throw err;
  }
}

/**
 * Changes the Transfer Syntax UID of the header copy (and its group length).
 * Only the copy changes, never the bytes being stored: the buffers read are
 * views of the very chunks on their way to the blob.
 */
function relabel(meta: { h: Header; value: Buffer }[], uid: string): void {
  const ts = meta.find((m) => m.h.tag === Tag.TransferSyntaxUID)!;
  ts.value = Buffer.from(uid.length % 2 ? `${uid}\0` : uid, 'latin1');
  ts.h = { ...ts.h, raw: Buffer.from(ts.h.raw) };
  ts.h.raw.writeUInt16LE(ts.value.length, 6);
  const groupLength = meta.find((m) => m.h.tag === Tag.FileMetaInformationGroupLength);
  if (groupLength) {
    groupLength.value = Buffer.from(groupLength.value);
    groupLength.value.writeUInt32LE(
      meta.filter((m) => m !== groupLength).reduce((n, m) => n + m.h.raw.length + m.value.length, 0),
      0,
    );
  }
}

/** The inflated bytes of a raw deflate stream (PS3.5 §A.5); data that does not inflate is not DICOM. */
async function* inflate(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const z = createInflateRaw();
  const done = pipeline(Readable.from(source, { objectMode: false }), z);
  done.catch(() => undefined);
  try {
    for await (const chunk of z) yield chunk as Buffer;
    await done;
  } catch (err) {
    if (typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).code!.startsWith('Z_')) {
      throw new NotDicomError(`the deflated data set cannot be inflated: ${(err as Error).message}`);
    }
    throw err;
  }
}

function emit(ctx: Ctx, ...bufs: Buffer[]): void {
  for (const b of bufs) {
    ctx.out.push(b);
    ctx.outBytes += b.length;
  }
  if (ctx.outBytes > ctx.maxHeader) throw new TooLargeError(`the header (everything but bulk data) exceeds ${ctx.maxHeader} bytes`);
}

async function readHeader(ctx: Ctx): Promise<Header> {
  const { r } = ctx;
  const { le, explicit } = ctx;
  const first = await r.read(8, 'a data element header');
  const group = le ? first.readUInt16LE(0) : first.readUInt16BE(0);
  const element = le ? first.readUInt16LE(2) : first.readUInt16BE(2);
  // Delimiters are not counted: there is at most one for each item or sequence.
  if (!(group === 0xfffe && (element === 0xe00d || element === 0xe0dd)) && count(ctx)) await new Promise((resolve) => setImmediate(resolve));
  const tag = hex4(group) + hex4(element);
  if (group === 0xfffe) {
    return { tag, vr: '', length: le ? first.readUInt32LE(4) : first.readUInt32BE(4), raw: first };
  }
  if (!explicit) {
    const length = le ? first.readUInt32LE(4) : first.readUInt32BE(4);
    const vr = length === UNDEFINED ? 'SQ' : vrOf(tag);
    return { tag, vr, length, raw: first };
  }
  const vr = first.toString('latin1', 4, 6);
  if (!VALID_VRS.has(vr)) throw new NotDicomError(`invalid value representation at offset ${r.pos - 8} (tag ${tag})`);
  if (LONG_VRS.has(vr)) {
    const more = await r.read(4, 'a data element header');
    const length = le ? more.readUInt32LE(0) : more.readUInt32BE(0);
    return { tag, vr, length, raw: Buffer.concat([first, more]) };
  }
  return { tag, vr, length: le ? first.readUInt16LE(6) : first.readUInt16BE(6), raw: first };
}

/**
 * Counts one element against MAX_DATA_ELEMENTS. What Cairn does per element
 * (here, in dcmjs, in the JSON and the index) costs far more than its 8 bytes
 * of header, so the count, not only the header's size, bounds an instance's
 * work. True when it is time to let the event loop turn: a long header is
 * read in slices, with other requests served in between.
 */
function count(ctx: Ctx): boolean {
  if (++ctx.elements > ctx.maxElements) {
    throw new LimitError(`the instance holds more than ${ctx.maxElements} data elements, items and fragments (MAX_DATA_ELEMENTS)`);
  }
  return ctx.elements % YIELD_EVERY === 0;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

function writeTag(ctx: Ctx, group: number, element: number, length: number, vr?: string): Buffer {
  const long = vr !== undefined && ctx.explicit;
  const b = Buffer.alloc(long ? 12 : 8);
  const u16 = (v: number, o: number) => (ctx.le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const u32 = (v: number, o: number) => (ctx.le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  u16(group, 0);
  u16(element, 2);
  if (long) {
    b.write(vr!, 4, 'latin1');
    u32(length, 8);
  } else u32(length, 4);
  return b;
}

async function copyElement(ctx: Ctx, h: Header): Promise<void> {
  const group = parseInt(h.tag.slice(0, 4), 16);
  const element = parseInt(h.tag.slice(4), 16);
  if (h.vr === 'SQ' || (h.vr === 'UN' && h.length === UNDEFINED)) {
    // Checked as the sequence opens, before anything inside it is read: a
    // nesting thousands deep fails here, not after it has cost time and memory.
    if (ctx.depth >= ctx.maxDepth) throw new LimitError(`sequences nest more than ${ctx.maxDepth} deep (MAX_SEQUENCE_DEPTH) at element ${h.tag}`);
    // Sequences and items are re-emitted with the lengths of what was copied
    // (values inside may change size with character set transcoding): with
    // defined lengths dcmjs reads each item once, where undefined ones make it
    // search every item for its delimiter, again at every level of nesting.
    const head = writeTag(ctx, group, element, 0, 'SQ');
    emit(ctx, head);
    const start = ctx.outBytes;
    const saved = ctx.explicit;
    // PS3.5 §6.2.2: UN of undefined length is encoded as Implicit VR LE inside.
    if (h.vr === 'UN') ctx.explicit = false;
    ctx.depth++;
    await copyItems(ctx, h.length);
    ctx.depth--;
    ctx.explicit = saved;
    setLength(ctx, head, ctx.outBytes - start);
    return;
  }
  if (h.length === UNDEFINED) throw new NotDicomError(`undefined length on a non-sequence element ${h.tag}`);
  const value = await ctx.r.read(h.length);
  if (h.tag === Tag.SpecificCharacterSet) {
    ctx.charsets = value
      .toString('latin1')
      .replace(/[\0 ]+$/, '')
      .split('\\')
      .map((s) => s.trim());
    if (needsCharsetDecoding(ctx.charsets)) {
      const utf8 = Buffer.from('ISO_IR 192');
      emit(ctx, writeHeaderLike(ctx, h, utf8.length), utf8);
      return;
    }
  } else if (ctx.charsets && TEXT_VRS.has(h.vr) && needsCharsetDecoding(ctx.charsets)) {
    let decoded: string;
    try {
      decoded = decodeText(value, ctx.charsets, h.vr);
    } catch (err) {
      throw new NotDicomError(`element ${h.tag} cannot be decoded: ${(err as Error).message}`);
    }
    let text = Buffer.from(decoded, 'utf8');
    if (text.length % 2) text = Buffer.concat([text, Buffer.from(' ')]);
    emit(ctx, writeHeaderLike(ctx, h, text.length), text);
    return;
  }
  emit(ctx, h.raw, value);
}

/** Writes a length into a header made by writeTag(): its last four bytes. */
function setLength(ctx: Ctx, head: Buffer, length: number): void {
  if (ctx.le) head.writeUInt32LE(length, head.length - 4);
  else head.writeUInt32BE(length, head.length - 4);
}

function writeHeaderLike(ctx: Ctx, h: Header, length: number): Buffer {
  const raw = Buffer.from(h.raw);
  if (!ctx.explicit) ctx.le ? raw.writeUInt32LE(length, 4) : raw.writeUInt32BE(length, 4);
  else if (LONG_VRS.has(h.vr)) ctx.le ? raw.writeUInt32LE(length, 8) : raw.writeUInt32BE(length, 8);
  else {
    if (length > 0xffff) throw new TooLargeError(`element ${h.tag} is too long after character set conversion`);
    ctx.le ? raw.writeUInt16LE(length, 6) : raw.writeUInt16BE(length, 6);
  }
  return raw;
}

async function copyItems(ctx: Ctx, length: number): Promise<void> {
  const end = length === UNDEFINED ? Infinity : ctx.r.pos + length;
  while (ctx.r.pos < end) {
    const item = await readHeader(ctx);
    if (item.tag === Tag.SequenceDelimitationItem) {
      if (length !== UNDEFINED) throw new NotDicomError('sequence delimiter inside a sequence of defined length');
      return;
    }
    if (item.tag !== Tag.Item) throw new NotDicomError(`expected a sequence item, found tag ${item.tag}`);
    const head = writeTag(ctx, 0xfffe, 0xe000, 0);
    emit(ctx, head);
    const start = ctx.outBytes;
    const itemEnd = item.length === UNDEFINED ? Infinity : ctx.r.pos + item.length;
    while (ctx.r.pos < itemEnd) {
      const h = await readHeader(ctx);
      if (h.tag === Tag.ItemDelimitationItem) {
        if (item.length !== UNDEFINED) throw new NotDicomError('item delimiter inside an item of defined length');
        break;
      }
      await copyElement(ctx, h);
    }
    setLength(ctx, head, ctx.outBytes - start);
  }
  if (ctx.r.pos > end) throw new NotDicomError('sequence items overrun the sequence length');
}

async function readPixelData(ctx: Ctx, h: Header): Promise<PixelData> {
  const { r } = ctx;
  if (h.length !== UNDEFINED) {
    const pd: PixelData = { vr: h.vr, encapsulated: false, fragments: [{ offset: r.pos, length: h.length }], offsetTable: [], heads: [], firstItem: r.pos };
    await r.discard(h.length, 'the pixel data');
    return pd;
  }
  // Encapsulated (PS3.5 §A.4): an offset-table item, then one item per fragment.
  const pd: PixelData = { vr: 'OB', encapsulated: true, fragments: [], offsetTable: [], heads: [], firstItem: 0 };
  let first = true;
  for (;;) {
    const item = await readHeader(ctx);
    if (item.tag === Tag.SequenceDelimitationItem) break;
    if (item.tag !== Tag.Item || item.length === UNDEFINED) throw new NotDicomError('malformed encapsulated pixel data');
    if (first) {
      first = false;
      const table = await r.read(item.length, 'the basic offset table');
      for (let i = 0; i + 4 <= table.length; i += 4) pd.offsetTable.push(ctx.le ? table.readUInt32LE(i) : table.readUInt32BE(i));
      pd.firstItem = r.pos;
      continue;
    }
    pd.fragments.push({ offset: r.pos, length: item.length });
    pd.heads.push(Buffer.from(await r.peek(Math.min(12, item.length))));
    await r.discard(item.length, 'a pixel data fragment');
  }
  return pd;
}
