import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import type { PixelModule } from '../pixels/types.js';
import type { PixelData } from './scan.js';
import { Tag, VALID_VRS, vrOf } from './tags.js';
import { transferSyntax } from './transfer-syntax.js';
import { resolveVr, type VrContext } from './vr.js';

// A buffered Part-10 rewriter: a whole stored instance, in any native
// encoding (Implicit VR LE, Explicit VR LE or BE, Deflated Explicit VR LE),
// re-encoded as Explicit VR Little Endian (PS3.5 §A.2) with its File Meta
// Information rewritten (PS3.10 §7.1), optionally with new pixel data (native
// or encapsulated, PS3.5 §A.4) and new top-level attributes. Rewriting a
// header is cheap and runs inline; decoding and encoding pixels is the codec
// pool's (server/pixels/).

export class RewriteError extends Error {}

const inflateRawAsync = promisify(inflateRaw);
const UNDEFINED = 0xffffffff;
/** PS3.5 §7.1.2: the longest value a 32-bit length can state (0xFFFFFFFF means undefined). */
export const MAX_VALUE_LENGTH = 0xfffffffe;
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
// Byte-swapping width of each VR's values between big and little endian (PS3.5 §7.3).
const SWAP: Record<string, number> = { US: 2, SS: 2, OW: 2, AT: 2, UL: 4, SL: 4, FL: 4, OF: 4, OL: 4, FD: 8, OD: 8, SV: 8, UV: 8, OV: 8 };

/** A stored Part-10 file opened for rewriting. */
export interface Part10 {
  transferSyntaxUid: string;
  /** The 128-byte preamble, kept as stored (PS3.10 §7.1: its use is the application's). */
  preamble: Buffer;
  /** File Meta Information elements other than the group length, as stored. */
  meta: { tag: string; vr: string; value: Buffer }[];
  /** The data set, inflated when the syntax deflates it (PS3.5 §A.5). */
  dataset: Buffer;
  /**
   * Where the data set starts in the file (after the file meta information).
   * Offsets Cairn records for a deflated instance count from the file's
   * start in its inflated form: these bytes of the file followed by `dataset`.
   */
  datasetStart: number;
  explicit: boolean;
  littleEndian: boolean;
}

/**
 * Opens a Part-10 file: its meta information and its data set, inflated when
 * deflated (no more than `maxInflated` bytes) unless `inflated` says the
 * file is already in its inflated form. A data set labelled explicit
 * whose first element has no valid VR is read as implicit, as the header scan
 * (scan.ts) reads it.
 */
export async function openPart10(file: Buffer, maxInflated = MAX_VALUE_LENGTH, opts: { inflated?: boolean } = {}): Promise<Part10> {
  if (file.length < 132 || file.toString('latin1', 128, 132) !== 'DICM') throw new RewriteError('not a DICOM Part-10 file');
  const meta: Part10['meta'] = [];
  let pos = 132;
  let tsUid = '';
  while (pos + 8 <= file.length && file.readUInt16LE(pos) === 0x0002) {
    const tag = hex4(0x0002) + hex4(file.readUInt16LE(pos + 2));
    const vr = file.toString('latin1', pos + 4, pos + 6);
    let length: number;
    let head: number;
    if (LONG_VRS.has(vr)) {
      length = file.readUInt32LE(pos + 8);
      head = 12;
    } else {
      length = file.readUInt16LE(pos + 6);
      head = 8;
    }
    const value = file.subarray(pos + head, pos + head + length);
    if (value.length !== length) throw new RewriteError('the file meta information is truncated');
    if (tag === Tag.TransferSyntaxUID) tsUid = value.toString('latin1').replace(/[\0 ]+$/, '');
    if (tag !== Tag.FileMetaInformationGroupLength) meta.push({ tag, vr, value });
    pos += head + length;
  }
  if (!tsUid) throw new RewriteError('the file meta information has no Transfer Syntax UID');
  const ts = transferSyntax(tsUid);
  let dataset = file.subarray(pos);
  if (ts.deflated && !opts.inflated) dataset = await inflateRawAsync(dataset, { maxOutputLength: maxInflated });
  let explicit = ts.explicitVr;
  if (explicit && ts.littleEndian && dataset.length >= 8 && !VALID_VRS.has(dataset.toString('latin1', 4, 6))) explicit = false;
  return { transferSyntaxUid: tsUid, preamble: file.subarray(0, 128), meta, dataset, datasetStart: pos, explicit, littleEndian: ts.littleEndian };
}

/** The inflated form of a deflated file, which the offsets of its frames and bulk data count in. */
export function inflatedForm(file: Buffer, p: Part10): Buffer {
  return Buffer.concat([file.subarray(0, p.datasetStart), p.dataset]);
}

/** What the rewriter needs to know of an instance's pixels, read from its top-level data set. */
export interface PixelFacts {
  /** The Image Pixel module; undefined fields were absent. */
  module: Partial<PixelModule>;
  /** Pixel Data's place in Part10.dataset; null when there is none. */
  pixelData: PixelData | null;
  /** Lossy Image Compression Ratio (0028,2112) and Method (0028,2114) as stored, to be extended. */
  lossyRatios: string[];
  lossyMethods: string[];
}

const MODULE_US: Record<string, keyof PixelModule> = {
  '00280002': 'samplesPerPixel',
  '00280006': 'planarConfiguration',
  '00280010': 'rows',
  '00280011': 'columns',
  '00280100': 'bitsAllocated',
  '00280101': 'bitsStored',
  '00280102': 'highBit',
  '00280103': 'pixelRepresentation',
};
export const LOSSY_IMAGE_COMPRESSION = '00282110';
export const LOSSY_IMAGE_COMPRESSION_RATIO = '00282112';
export const LOSSY_IMAGE_COMPRESSION_METHOD = '00282114';
export const PHOTOMETRIC_INTERPRETATION = '00280004';
export const PLANAR_CONFIGURATION = '00280006';

/**
 * Reads the top-level pixel module attributes and where Pixel Data is; with
 * `untilPixelData`, stops at the Pixel Data element (the data set may end there).
 */
export function pixelFacts(p: Part10, opts: { untilPixelData?: boolean } = {}): PixelFacts {
  const r = new Reader(p.dataset, p.explicit, p.littleEndian);
  const module: Partial<PixelModule> = {};
  let pixelData: PixelData | null = null;
  const strings = (v: Buffer) =>
    v
      .toString('latin1')
      .replace(/[\0 ]+$/, '')
      .split('\\')
      .map((s) => s.trim());
  let lossyRatios: string[] = [];
  let lossyMethods: string[] = [];
  while (r.pos < r.buf.length) {
    const h = r.header();
    if (h.tag === Tag.PixelData) {
      if (opts.untilPixelData) break;
      pixelData = r.pixelData(h);
      continue;
    }
    if (h.length === UNDEFINED) {
      r.skipUndefined();
      continue;
    }
    const v = r.take(h.length, h.tag);
    const key = MODULE_US[h.tag];
    if (key && v.length >= 2) (module as Record<string, number>)[key] = p.littleEndian ? v.readUInt16LE(0) : v.readUInt16BE(0);
    else if (h.tag === PHOTOMETRIC_INTERPRETATION) module.photometricInterpretation = strings(v)[0];
    else if (h.tag === Tag.NumberOfFrames) module.numberOfFrames = Number(strings(v)[0]) || 1;
    else if (h.tag === LOSSY_IMAGE_COMPRESSION_RATIO) lossyRatios = strings(v).filter(Boolean);
    else if (h.tag === LOSSY_IMAGE_COMPRESSION_METHOD) lossyMethods = strings(v).filter(Boolean);
  }
  return { module, pixelData, lossyRatios, lossyMethods };
}

/** New pixel data for the rewritten instance: one native value, or one encapsulated fragment per frame. */
export type NewPixels = { native: Buffer; bitsAllocated: number } | { fragments: Buffer[] };

export interface RewriteOptions {
  /** The transfer syntax of the result: Explicit VR Little Endian, or an encapsulated one with `pixels.fragments`. */
  transferSyntaxUid: string;
  pixels?: NewPixels;
  /** Top-level attributes to set (added or replaced), as Explicit VR LE values. */
  set?: Record<string, { vr: string; value: Buffer }>;
}

/**
 * The instance re-encoded as Explicit VR Little Endian (PS3.5 §A.2): VRs of
 * an implicit data set resolved from the registry and the data set (vr.ts),
 * big-endian values swapped by their VR, sequences and items written with
 * defined lengths, data set group lengths (retired, PS3.5 §7.2) left out, and
 * the File Meta Information rewritten with the new Transfer Syntax UID and
 * group length.
 */
export function rewritePart10(p: Part10, opts: RewriteOptions): Buffer {
  const w = new Writer();
  w.push(p.preamble);
  w.push(Buffer.from('DICM', 'latin1'));
  const meta = p.meta.filter((m) => m.tag !== Tag.TransferSyntaxUID);
  meta.push({ tag: Tag.TransferSyntaxUID, vr: 'UI', value: uidValue(opts.transferSyntaxUid) });
  meta.sort((a, b) => (a.tag < b.tag ? -1 : 1));
  const metaBytes: Buffer[] = [];
  for (const m of meta) metaBytes.push(elementHeader(m.tag, m.vr, m.value.length), m.value);
  const metaLength = metaBytes.reduce((n, b) => n + b.length, 0);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(metaLength, 0);
  w.push(elementHeader(Tag.FileMetaInformationGroupLength, 'UL', 4), groupLength, ...metaBytes);
  const r = new Reader(p.dataset, p.explicit, p.littleEndian);
  const set = Object.entries(opts.set ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  convertDataset(r, w, r.buf.length, { implicit: !p.explicit, littleEndian: p.littleEndian }, { set, pixels: opts.pixels });
  return w.concat();
}

/** The Explicit VR LE value of a UI: padded with a NUL to an even length (PS3.5 §6.2). */
export function uidValue(uid: string): Buffer {
  return Buffer.from(uid.length % 2 ? `${uid}\0` : uid, 'latin1');
}

/** A text value padded with a space to an even length (PS3.5 §6.2). */
export function textValue(text: string): Buffer {
  return Buffer.from(text.length % 2 ? `${text} ` : text, 'latin1');
}

interface Top {
  set: [string, { vr: string; value: Buffer }][];
  pixels?: NewPixels;
}

interface Header {
  tag: string;
  /** The VR the encoding stated; '' when implicit. */
  vr: string;
  length: number;
}

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    public explicit: boolean,
    readonly le: boolean,
  ) {}

  u16(at: number): number {
    return this.le ? this.buf.readUInt16LE(at) : this.buf.readUInt16BE(at);
  }

  u32(at: number): number {
    return this.le ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at);
  }

  header(): Header {
    const at = this.pos;
    if (at + 8 > this.buf.length) throw new RewriteError(`the data set ends inside an element header at ${at}`);
    const tag = hex4(this.u16(at)) + hex4(this.u16(at + 2));
    if (tag.startsWith('FFFE') || !this.explicit) {
      this.pos += 8;
      return { tag, vr: '', length: this.u32(at + 4) };
    }
    const vr = this.buf.toString('latin1', at + 4, at + 6);
    if (!VALID_VRS.has(vr)) throw new RewriteError(`invalid value representation for ${tag} at ${at}`);
    if (LONG_VRS.has(vr)) {
      if (at + 12 > this.buf.length) throw new RewriteError(`the data set ends inside an element header at ${at}`);
      this.pos += 12;
      return { tag, vr, length: this.u32(at + 8) };
    }
    this.pos += 8;
    return { tag, vr, length: this.u16(at + 6) };
  }

  take(length: number, tag: string): Buffer {
    if (this.pos + length > this.buf.length) throw new RewriteError(`the value of ${tag} runs past the end of the data set`);
    const v = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return v;
  }

  /** Skips the items of an undefined-length value up to and including its sequence delimiter. */
  skipUndefined(): void {
    const saved = this.explicit;
    for (;;) {
      const h = this.header();
      if (h.tag === Tag.SequenceDelimitationItem) break;
      if (h.tag !== Tag.Item) throw new RewriteError(`expected an item, found ${h.tag}`);
      if (h.length !== UNDEFINED) {
        this.take(h.length, h.tag);
        continue;
      }
      for (;;) {
        const e = this.header();
        if (e.tag === Tag.ItemDelimitationItem) break;
        if (e.length === UNDEFINED) {
          // PS3.5 §6.2.2: UN of undefined length is Implicit VR LE inside.
          if (e.vr === 'UN') this.explicit = false;
          this.skipUndefined();
          this.explicit = saved;
        } else this.take(e.length, e.tag);
      }
    }
    this.explicit = saved;
  }

  /** Pixel Data's spans in the buffer, as the header scan records them (scan.ts). */
  pixelData(h: Header): PixelData {
    if (h.length !== UNDEFINED) {
      const pd: PixelData = {
        vr: h.vr || 'OW',
        encapsulated: false,
        fragments: [{ offset: this.pos, length: h.length }],
        offsetTable: [],
        heads: [],
        firstItem: this.pos,
      };
      this.take(h.length, h.tag);
      return pd;
    }
    const pd: PixelData = { vr: 'OB', encapsulated: true, fragments: [], offsetTable: [], heads: [], firstItem: 0 };
    let first = true;
    for (;;) {
      const item = this.header();
      if (item.tag === Tag.SequenceDelimitationItem) break;
      if (item.tag !== Tag.Item || item.length === UNDEFINED) throw new RewriteError('malformed encapsulated pixel data');
      const v = this.take(item.length, Tag.PixelData);
      if (first) {
        first = false;
        for (let i = 0; i + 4 <= v.length; i += 4) pd.offsetTable.push(this.le ? v.readUInt32LE(i) : v.readUInt32BE(i));
        pd.firstItem = this.pos;
        continue;
      }
      pd.fragments.push({ offset: this.pos - item.length, length: item.length });
      pd.heads.push(v.subarray(0, Math.min(12, v.length)));
    }
    return pd;
  }
}

/** Output chunks with length fields patched once what they count is written. */
class Writer {
  private chunks: Buffer[] = [];
  size = 0;

  push(...bufs: Buffer[]): void {
    for (const b of bufs) {
      this.chunks.push(b);
      this.size += b.length;
    }
  }

  concat(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/** An Explicit VR Little Endian element header (PS3.5 §7.1.2). */
function elementHeader(tag: string, vr: string, length: number): Buffer {
  const long = LONG_VRS.has(vr);
  const b = Buffer.alloc(long ? 12 : 8);
  b.writeUInt16LE(parseInt(tag.slice(0, 4), 16), 0);
  b.writeUInt16LE(parseInt(tag.slice(4), 16), 2);
  b.write(vr, 4, 'latin1');
  if (long) b.writeUInt32LE(length, 8);
  else b.writeUInt16LE(length, 6);
  return b;
}

function itemHeader(element: number, length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(element, 2);
  b.writeUInt32LE(length, 4);
  return b;
}

function isPrivateCreator(tag: string): boolean {
  const group = parseInt(tag.slice(0, 4), 16);
  const element = parseInt(tag.slice(4), 16);
  return group % 2 === 1 && element >= 0x0010 && element <= 0x00ff;
}

/** The VR an element gets in Explicit VR LE. */
function targetVr(h: Header, ctx: VrContext): string {
  if (!ctx.implicit && h.vr) {
    // An explicit encoding stated it; only the registry's choices sent as UN
    // or OB/OW for pixel data are left as they were.
    return h.vr;
  }
  if (h.length === UNDEFINED) return 'SQ';
  if (isPrivateCreator(h.tag)) return 'LO';
  return resolveVr(h.tag, vrOf(h.tag), ctx);
}

/** The values of an element in little-endian byte order. */
function littleEndian(value: Buffer, vr: string, le: boolean): Buffer {
  const width = SWAP[vr];
  if (le || !width || value.length % width) return value;
  const out = Buffer.from(value);
  if (width === 2) out.swap16();
  else if (width === 4) out.swap32();
  else out.swap64();
  return out;
}

function padEven(v: Buffer, pad = 0): Buffer {
  return v.length % 2 ? Buffer.concat([v, Buffer.from([pad])]) : v;
}

/** Converts the elements of one data set (top level or an item) from r.pos up to `end` (or its item delimiter). */
function convertDataset(r: Reader, w: Writer, end: number, outer: VrContext, top?: Top): void {
  const ctx: VrContext = { ...outer };
  let pending = 0;
  const flushSet = (before?: string) => {
    if (!top) return;
    while (pending < top.set.length && (before === undefined || top.set[pending][0] < before)) {
      const [tag, el] = top.set[pending++];
      w.push(elementHeader(tag, el.vr, el.value.length), el.value);
    }
  };
  while (r.pos < end) {
    const h = r.header();
    if (h.tag === Tag.ItemDelimitationItem) {
      if (end !== Infinity) throw new RewriteError('item delimiter inside an item of defined length');
      break;
    }
    flushSet(h.tag);
    const replaced = top && pending < top.set.length && top.set[pending][0] === h.tag;
    if (h.tag === Tag.PixelData && top) {
      convertPixelData(r, w, h, ctx, top.pixels);
      continue;
    }
    const vr = targetVr(h, ctx);
    if (vr === 'SQ' || h.length === UNDEFINED) {
      if (replaced) {
        skipValue(r, h);
        const [tag, el] = top!.set[pending++];
        w.push(elementHeader(tag, el.vr, el.value.length), el.value);
        continue;
      }
      convertSequence(r, w, h, ctx);
      continue;
    }
    const raw = r.take(h.length, h.tag);
    if (replaced) {
      const [tag, el] = top!.set[pending++];
      w.push(elementHeader(tag, el.vr, el.value.length), el.value);
      continue;
    }
    // PS3.5 §7.2: group lengths are retired and would not match the re-encoded group.
    if (h.tag.endsWith('0000')) continue;
    // Values a later element's VR depends on (vr.ts).
    if (h.tag === Tag.PixelRepresentation && raw.length >= 2) ctx.pixelRepresentation = r.u16(r.pos - h.length);
    else if (h.tag === Tag.BitsAllocated && raw.length >= 2) ctx.bitsAllocated = r.u16(r.pos - h.length);
    else if (h.tag === Tag.WaveformBitsAllocated && raw.length >= 2) ctx.waveformBitsAllocated = r.u16(r.pos - h.length);
    else if (h.tag === Tag.LUTDescriptor && raw.length >= 2) ctx.lutEntries = r.u16(r.pos - h.length);
    let value = littleEndian(raw, vr, outer.littleEndian);
    let outVr = vr;
    // PS3.5 §6.2.2: a value too long for a 16-bit length is sent as UN.
    if (!LONG_VRS.has(outVr) && value.length > 0xffff) outVr = 'UN';
    if (value.length % 2) value = padEven(value, outVr === 'UI' || !isText(outVr) ? 0 : 0x20);
    w.push(elementHeader(h.tag, outVr, value.length), value);
  }
  flushSet();
}

const TEXT_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UR', 'UT']);
function isText(vr: string): boolean {
  return TEXT_VRS.has(vr);
}

function skipValue(r: Reader, h: Header): void {
  if (h.length === UNDEFINED) r.skipUndefined();
  else r.take(h.length, h.tag);
}

function convertSequence(r: Reader, w: Writer, h: Header, ctx: VrContext): void {
  const head = elementHeader(h.tag, 'SQ', 0);
  w.push(head);
  const start = w.size;
  const saved = r.explicit;
  // PS3.5 §6.2.2: UN of undefined length is encoded as Implicit VR LE inside.
  const inner: VrContext = { ...ctx };
  if (h.vr === 'UN') {
    r.explicit = false;
    inner.implicit = true;
  }
  const end = h.length === UNDEFINED ? Infinity : r.pos + h.length;
  while (r.pos < end) {
    const item = r.header();
    if (item.tag === Tag.SequenceDelimitationItem) break;
    if (item.tag !== Tag.Item) throw new RewriteError(`expected a sequence item in ${h.tag}, found ${item.tag}`);
    const ih = itemHeader(0xe000, 0);
    w.push(ih);
    const itemStart = w.size;
    convertDataset(r, w, item.length === UNDEFINED ? Infinity : r.pos + item.length, inner);
    ih.writeUInt32LE(w.size - itemStart, 4);
  }
  r.explicit = saved;
  head.writeUInt32LE(w.size - start, 8);
}

function convertPixelData(r: Reader, w: Writer, h: Header, ctx: VrContext, pixels: NewPixels | undefined): void {
  if (pixels) {
    skipValue(r, h);
    if ('native' in pixels) {
      const value = padEven(pixels.native);
      if (value.length > MAX_VALUE_LENGTH) throw new RewriteError('the pixel data is too long for Explicit VR Little Endian');
      w.push(elementHeader(Tag.PixelData, pixels.bitsAllocated <= 8 ? 'OB' : 'OW', value.length), value);
      return;
    }
    writeEncapsulated(w, pixels.fragments);
    return;
  }
  if (h.length === UNDEFINED) {
    // Encapsulated pixel data is little endian in every syntax that has it; its items are copied.
    const start = r.pos;
    r.pixelData(h);
    const items = r.buf.subarray(start, r.pos);
    w.push(elementHeader(Tag.PixelData, 'OB', UNDEFINED), items);
    return;
  }
  const raw = r.take(h.length, h.tag);
  // PS3.5 §A.1, §A.2: OW when more than 8 bits are allocated, else OB.
  const vr = h.vr && !ctx.implicit ? h.vr : (ctx.bitsAllocated ?? 16) <= 8 ? 'OB' : 'OW';
  const value = padEven(littleEndian(raw, h.vr || 'OW', ctx.littleEndian));
  w.push(elementHeader(Tag.PixelData, vr, value.length), value);
}

/**
 * Encapsulated pixel data (PS3.5 §A.4): a Basic Offset Table with each
 * frame's offset, then one fragment per frame (padded to an even length),
 * then the sequence delimiter.
 */
function writeEncapsulated(w: Writer, frames: Buffer[]): void {
  w.push(elementHeader(Tag.PixelData, 'OB', UNDEFINED));
  const table = Buffer.alloc(frames.length * 4);
  let offset = 0;
  const padded = frames.map((f) => padEven(f));
  padded.forEach((f, i) => {
    table.writeUInt32LE(offset, i * 4);
    offset += 8 + f.length;
  });
  w.push(itemHeader(0xe000, table.length), table);
  for (const f of padded) w.push(itemHeader(0xe000, f.length), f);
  w.push(itemHeader(0xe0dd, 0));
}
