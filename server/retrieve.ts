import { Readable } from 'node:stream';
import type { Caller } from './access.js';
import { readRanges } from './blob/spans.js';
import type { FramedInstance, StoredInstance } from './db/lookup.js';
import type { Span } from './db/rows.js';
import type { AppDeps } from './deps.js';
import { Tag } from './dicom/tags.js';
import { inflatedForm, openPart10 } from './dicom/rewrite.js';
import { EXPLICIT_VR_LE, transferSyntax, type TransferSyntax } from './dicom/transfer-syntax.js';
import { deidentifiedBytes } from './deid/bytes.js';
import { ApiError } from './errors.js';
import { typeMatches, type Acceptable } from './http/accept.js';
import type { OutPart } from './http/multipart.js';
import type { Reply } from './http/reply.js';
import { type PixelCodecs, PixelError, type PixelModule } from './pixels/types.js';
import {
  CannotEncode,
  ENCODE_TARGETS,
  encodeFrame,
  littleEndianFrame,
  MAX_CONVERT_BYTES,
  MAX_DECODED_BYTES,
  moduleOfHeader,
  nativeFrame,
  transcodeInstance,
} from './transcode.js';

// The one bytes seam (DESIGN.md): the stored rows a read found, what the
// client accepts, who asks and what was asked become the parts to send.
// Whether something can be served as asked is decided here and only here
// (conversionFor); every way of turning stored bytes into other bytes is a
// case of Conversion, with its parts built in partsOf.

/** What a retrieve asks for, with the rows the caller's scoped read found. */
export type Asked =
  /** Whole instances (PS3.18 §10.4.1.1.1); `one` when the target is a single instance. */
  | { kind: 'instances'; rows: StoredInstance[]; one: boolean }
  /** Frames by number, from 1 (PS3.18 §10.4.1.1.3). */
  | { kind: 'frames'; row: FramedInstance; frames: number[] }
  /** One top-level bulk data element (PS3.18 §10.4.1.1.5), with the HTTP Range header when sent. */
  | { kind: 'bulk'; row: FramedInstance; tag: string; range?: string };

/**
 * What stored bytes are made into before they are sent: the stored bytes
 * themselves; a whole instance re-encoded in transfer syntax `to`
 * (transcode); or pixel data, frame by frame, as native little-endian
 * pixels (`to` Explicit VR Little Endian) or encoded in `to` (pixels). A
 * renderer (a consumer media type, PS3.18 §8.7.4) is another case here.
 * `fallback` marks a conversion chosen by default (no transfer syntax asked
 * for), which sends the stored bytes when the instance cannot be converted.
 */
export type Conversion =
  | { kind: 'as-stored'; multipart: boolean; contentType: string }
  | { kind: 'transcode'; multipart: boolean; contentType: string; to: string; fallback: boolean }
  | { kind: 'pixels'; multipart: boolean; contentType: string; to: string };

/**
 * The representations a retrieve sends: a whole instance as application/dicom;
 * pixel data (frames, or the bulk data of encapsulated pixel data) under the
 * media type of its syntax; the bytes of any other bulk data value.
 */
export type Representation = 'instance' | 'pixels' | 'value';

/** What Cairn can make of pixel data: decode a stored syntax, encode a target syntax. */
export interface PixelAbility {
  decode(ts: TransferSyntax): boolean;
  /** With `module`, for pixels of that module (without, whether the target is one Cairn can make at all). */
  encode(uid: string, module?: PixelModule): boolean;
}

/**
 * What the codecs given can do. Native pixel data is always readable (byte
 * order and deflate are Cairn's own); encapsulated data needs a codec.
 */
export function abilityOf(pixels?: PixelCodecs): PixelAbility {
  if (!pixels) return NO_CODECS;
  let can = abilities.get(pixels);
  if (!can) {
    can = {
      decode: (ts) => ts.servedAsStored && (!ts.encapsulated || pixels.canDecode(ts.uid)),
      encode: (uid, module) => ENCODE_TARGETS.has(uid) && (!module || pixels.canEncode(uid, module)),
    };
    abilities.set(pixels, can);
  }
  return can;
}

/** Without codecs only native pixel data (byte order, deflate: Cairn's own) can be converted. */
const NO_CODECS: PixelAbility = { decode: (ts) => ts.servedAsStored && !ts.encapsulated, encode: () => false };
// Made once per codec pool, not per request.
const abilities = new WeakMap<PixelCodecs, PixelAbility>();

/**
 * How to serve `stored` as `what` for this Accept, or null when nothing the
 * client accepts can be made from it (→ 406). The acceptable entries are
 * tried in order of q (parseAccept sorts them), the first that can be made wins.
 */
export function conversionFor(accepts: Acceptable[], stored: TransferSyntax, what: Representation, can: PixelAbility = NO_CODECS): Conversion | null {
  if (!stored.servedAsStored) return null;
  if (what === 'value') return { kind: 'as-stored', multipart: wantsMultipartValue(accepts), contentType: OCTETS };
  for (const a of accepts) {
    const c = what === 'instance' ? instanceAs(a, stored, can) : pixelsAs(a, stored, can);
    if (c) return c;
  }
  return null;
}

const OCTETS = 'application/octet-stream';
const DICOM = 'application/dicom';

/**
 * PS3.18 §8.7.3.5.2, Table 8.7.3-5: without a transfer-syntax parameter an
 * instance is sent in Explicit VR Little Endian when its pixel data is
 * native or lossless (Implicit VR and Big Endian shall not be used with web
 * services, §8.7.3), in its stored syntax when lossy or when Cairn cannot
 * decode it. `transfer-syntax=*` or the stored UID: as stored. Another UID:
 * transcoded where Cairn can make it.
 */
function instanceAs(a: Acceptable, stored: TransferSyntax, can: PixelAbility): Conversion | null {
  if (!typeMatches(a.type, DICOM)) return null;
  const ts = a.transferSyntax;
  if (ts === '*' || ts === stored.uid) return sent(a, DICOM, stored.uid);
  if (ts === undefined) {
    return stored.uid === EXPLICIT_VR_LE || stored.lossy || !can.decode(stored) ? sent(a, DICOM, stored.uid) : transcoded(a, EXPLICIT_VR_LE, true);
  }
  if (!can.decode(stored)) return null;
  if (ts === EXPLICIT_VR_LE || can.encode(ts)) return transcoded(a, ts, false);
  return null;
}

// Plain functions rather than closures made per call: conversionFor runs for
// every instance of every retrieve.
function sent(a: Acceptable, type: string, label: string): Conversion {
  return { kind: 'as-stored', multipart: a.multipart, contentType: `${type}; transfer-syntax=${label}` };
}

function transcoded(a: Acceptable, uid: string, fallback: boolean): Conversion {
  return { kind: 'transcode', multipart: a.multipart, contentType: `${DICOM}; transfer-syntax=${uid}`, to: uid, fallback };
}

function madePixels(a: Acceptable, type: string, uid: string): Conversion {
  return { kind: 'pixels', multipart: a.multipart, contentType: `${type}; transfer-syntax=${uid}`, to: uid };
}

/** The transfer syntax a media type stands for when no transfer-syntax parameter is given (PS3.18 Table 8.7.3-5). */
const DEFAULT_SYNTAX_OF: Record<string, string> = Object.fromEntries([...ENCODE_TARGETS].map(([uid, type]) => [type, uid]));

/**
 * Pixel data (PS3.18 §8.7.3.5, Table 8.7.3-5): compressed data under its own
 * media type, or under application/octet-stream with `transfer-syntax=*`
 * (as OHIF asks for frames); application/octet-stream without a transfer
 * syntax is native little-endian pixels, decoded when stored compressed;
 * another compressed media type (or syntax) is encoded where Cairn can.
 */
function pixelsAs(a: Acceptable, stored: TransferSyntax, can: PixelAbility): Conversion | null {
  const ts = a.transferSyntax;
  if (stored.encapsulated) {
    if (typeMatches(a.type, stored.pixelMediaType) && (ts === undefined || ts === '*' || ts === stored.uid)) return sent(a, stored.pixelMediaType, stored.uid);
    if (a.type === OCTETS && ts === '*') return sent(a, OCTETS, stored.uid);
    if (typeMatches(a.type, OCTETS) && (ts === undefined || ts === EXPLICIT_VR_LE) && can.decode(stored)) return madePixels(a, OCTETS, EXPLICIT_VR_LE);
  } else if (typeMatches(a.type, OCTETS)) {
    if (ts === '*' || ts === stored.uid || ts === stored.pixelLabel) return sent(a, OCTETS, stored.pixelLabel);
    if (ts === undefined || ts === EXPLICIT_VR_LE) return stored.littleEndian ? sent(a, OCTETS, EXPLICIT_VR_LE) : madePixels(a, OCTETS, EXPLICIT_VR_LE);
  }
  const target = ts ?? DEFAULT_SYNTAX_OF[a.type];
  if (!target || target === stored.uid || !can.encode(target) || !can.decode(stored)) return null;
  const type = ENCODE_TARGETS.get(target)!;
  return typeMatches(a.type, type) ? madePixels(a, type, target) : null;
}

/** A bulk data value goes as one body unless only multipart payloads are accepted. */
function wantsMultipartValue(accepts: Acceptable[]): boolean {
  return !accepts.some((a) => !a.multipart && (a.type === OCTETS || a.type === '*/*')) && accepts.some((a) => a.multipart);
}

/** What can be asked for instead, for a 406 body: media types with their transfer-syntax parameter. */
function acceptable(stored: TransferSyntax, what: Representation, can: PixelAbility, module?: PixelModule): string[] {
  if (!stored.servedAsStored) return [];
  const decodable = can.decode(stored);
  const targets = decodable ? [...ENCODE_TARGETS].filter(([uid]) => uid !== stored.uid && can.encode(uid, module)) : [];
  if (what === 'instance') {
    const out = [`${DICOM}; transfer-syntax=${stored.uid}`];
    if (decodable && stored.uid !== EXPLICIT_VR_LE) out.push(`${DICOM}; transfer-syntax=${EXPLICIT_VR_LE}`);
    return [...out, ...targets.map(([uid]) => `${DICOM}; transfer-syntax=${uid}`)];
  }
  const out = [`${stored.pixelMediaType}; transfer-syntax=${stored.pixelLabel}`];
  if (stored.encapsulated) out.push(`${OCTETS}; transfer-syntax=*`);
  if (decodable && (stored.encapsulated || !stored.littleEndian)) out.push(`${OCTETS}; transfer-syntax=${EXPLICIT_VR_LE}`);
  return [...out, ...targets.map(([uid, type]) => `${type}; transfer-syntax=${uid}`)];
}

/**
 * The 406 for a representation that cannot be served, with the media types
 * that could be asked for instead (for pixels of `module` when known).
 */
function notAcceptable(asked: Asked, stored: TransferSyntax, sopInstanceUid: string, can: PixelAbility, module?: PixelModule): ApiError {
  const what: Representation = asked.kind === 'instances' ? 'instance' : 'pixels';
  const list = acceptable(stored, what, can, module);
  const subject = asked.kind === 'instances' ? `instance ${sopInstanceUid}` : asked.kind === 'frames' ? 'frames' : 'pixel data';
  const message = list.length
    ? `no acceptable media type for ${subject} stored as ${stored.uid}; Cairn can send ${list.join(', ')}`
    : `no acceptable media type for ${subject} stored as ${stored.uid}; Cairn cannot send data stored in that syntax`;
  return new ApiError(406, 'NotAcceptable', message, {}, { acceptable: list });
}

/** Instances up to this size are read whole into one buffer instead of streamed. */
export const SMALL_BLOB = 4 * 1024 * 1024;

type Deps = Pick<AppDeps, 'blobs'> & Partial<Pick<AppDeps, 'pixels'>>;
type Seam = Deps & Partial<Pick<AppDeps, 'db' | 'config' | 'research'>>;

/**
 * The bytes seam: what `caller` asked, found in `asked`'s rows, as the Reply
 * to send for this Accept. Throws the 404 for frames or bulk data the
 * instance does not have, 406 when nothing acceptable can be made, 416 for a
 * Range outside the value. `caller` is who the bytes are for, for a
 * conversion that depends on it (a de-identified view).
 */
export async function retrieveBytes(deps: Seam, caller: Caller, accepts: Acceptable[], asked: Asked): Promise<Reply> {
  // A de-identified view (server/deid/bytes.ts) rewrites whole instances and serves frames and kept bulk data as stored.
  const view = deps.research?.viewOf(caller);
  if (view && deps.db && deps.config)
    return deidentifiedBytes({ ...deps, db: deps.db, config: deps.config }, view, caller, accepts, asked, () => asStored(deps, accepts, asked));
  return asStored(deps, accepts, asked);
}

async function asStored(deps: Deps, accepts: Acceptable[], asked: Asked): Promise<Reply> {
  try {
    if (asked.kind === 'instances') return await instances(deps, accepts, asked);
    if (asked.kind === 'frames') return await frames(deps, accepts, asked);
    return await bulk(deps, accepts, asked);
  } catch (err) {
    // The codecs turned down these pixels only once their module was read: the 406 lists what they can make of them.
    if (err instanceof CannotEncode) {
      const row = asked.kind === 'instances' ? asked.rows[0] : asked.row;
      throw notAcceptable(asked, transferSyntax(row.transferSyntaxUid), row.sopInstanceUid, abilityOf(deps.pixels), err.module);
    }
    throw err;
  }
}

function decide(deps: Deps, accepts: Acceptable[], asked: Asked, ts: string, sopInstanceUid: string, what: Representation): Conversion {
  const can = abilityOf(deps.pixels);
  const stored = transferSyntax(ts);
  const c = conversionFor(accepts, stored, what, can);
  if (!c) throw notAcceptable(asked, stored, sopInstanceUid, can);
  return c;
}

async function instances(deps: Deps, accepts: Acceptable[], asked: Extract<Asked, { kind: 'instances' }>): Promise<Reply> {
  const chosen = asked.rows.map((r) => decide(deps, accepts, asked, r.transferSyntaxUid, r.sopInstanceUid, 'instance'));
  // A bare application/dicom for one instance is answered with that instance alone.
  if (asked.one && asked.rows.length === 1 && !chosen[0].multipart) {
    const [part] = await instanceParts(chosen[0], asked.rows[0], deps, true);
    return { multipart: false, part: withLength(part) };
  }
  const parts = (await Promise.all(asked.rows.map((r, i) => instanceParts(chosen[i], r, deps, asked.rows.length === 1)))).flat();
  return { multipart: true, partType: DICOM, parts };
}

async function frames(deps: Deps, accepts: Acceptable[], asked: Extract<Asked, { kind: 'frames' }>): Promise<Reply> {
  const { row } = asked;
  if (!row.frames) throw new ApiError(404, 'NoFrames', `instance ${row.sopInstanceUid} has no pixel data frames that can be located`);
  const missing = asked.frames.find((n) => n > row.frames!.length);
  if (missing) throw new ApiError(404, 'FrameNotFound', `frame ${missing} does not exist; the instance has ${row.frames.length}`);
  const c = decide(deps, accepts, asked, row.transferSyntaxUid, row.sopInstanceUid, 'pixels');
  const src = new StoredBytes(deps, row);
  const chosen = asked.frames.map((n) => row.frames![n - 1]);
  const parts = c.kind === 'pixels' ? await pixelParts(c, src, chosen, asked.frames.length === 1) : partsOf(c, { src, frames: chosen });
  if (!c.multipart && parts.length === 1) return { multipart: false, part: withLength(parts[0]) };
  return { multipart: true, partType: mediaTypeOf(c.contentType), parts };
}

async function bulk(deps: Deps, accepts: Acceptable[], asked: Extract<Asked, { kind: 'bulk' }>): Promise<Reply> {
  const { row, tag } = asked;
  const el = row.bulk[tag];
  if (!el) throw new ApiError(404, 'BulkDataNotFound', `instance ${row.sopInstanceUid} has no bulk data element ${tag}`);
  const ts = transferSyntax(row.transferSyntaxUid);
  const src = new StoredBytes(deps, row);
  if (tag === Tag.PixelData && row.frames) {
    // Encapsulated pixel data is asked for like frames; native pixel data is
    // one value, converted only when stored big endian or asked for encoded.
    const c = ts.encapsulated
      ? decide(deps, accepts, asked, ts.uid, row.sopInstanceUid, 'pixels')
      : conversionFor(accepts, ts, 'pixels', abilityOf(deps.pixels));
    // PS3.18 §8.7.3.5: compressed pixel data is sent as its frames, without fragment delimiters.
    if (c?.kind === 'as-stored' && ts.encapsulated)
      return { multipart: true, partType: mediaTypeOf(c.contentType), parts: partsOf(c, { src, frames: row.frames }) };
    if (c?.kind === 'pixels' && c.to !== EXPLICIT_VR_LE) {
      return { multipart: true, partType: mediaTypeOf(c.contentType), parts: await pixelParts(c, src, row.frames, false) };
    }
    if (c?.kind === 'pixels') {
      // Native pixels are one value: every frame, decoded or swapped, in one body.
      const parts = await pixelParts(c, src, row.frames, true);
      const bodies = await Promise.all(parts.map(async (p) => (await p.body()) as Buffer));
      const value = Buffer.concat(bodies);
      const part = { contentType: c.contentType, length: value.length, body: () => value };
      return wantsMultipartValue(accepts) ? { multipart: true, partType: OCTETS, parts: [part] } : { multipart: false, part };
    }
  }
  const c = decide(deps, accepts, asked, ts.uid, row.sopInstanceUid, 'value');
  const range = parseRange(asked.range, el.length);
  const headers: Record<string, string> = { 'Accept-Ranges': 'bytes' };
  if (range || !c.multipart) {
    const r = range ?? { start: 0, end: el.length - 1 };
    if (range) headers['Content-Range'] = `bytes ${r.start}-${r.end}/${el.length}`;
    const span = { offset: el.offset + r.start, length: r.end - r.start + 1 };
    const part = el.length
      ? { ...spanPart(c.contentType, src, [span]), length: span.length }
      : { contentType: c.contentType, length: 0, body: () => Buffer.alloc(0) };
    return { multipart: false, part, status: range ? 206 : undefined, headers };
  }
  return { multipart: true, partType: OCTETS, parts: partsOf(c, { src, frames: [[el]] }), headers };
}

/**
 * The bytes of one stored instance's blob, by span. The spans of a deflated
 * instance count in its inflated form (see scan.ts), which is made once, on
 * first use, and kept for the request.
 */
class StoredBytes {
  private inflated?: Promise<Buffer>;
  readonly ts: TransferSyntax;

  constructor(
    private readonly deps: Deps,
    readonly row: FramedInstance,
  ) {
    this.ts = transferSyntax(row.transferSyntaxUid);
  }

  get pixels(): PixelCodecs | undefined {
    return this.deps.pixels;
  }

  private whole(): Promise<Buffer> {
    this.inflated ??= (async () => {
      const file = await collect(await this.deps.blobs.get(this.row.blobKey), MAX_CONVERT_BYTES);
      const p = await openPart10(file, MAX_DECODED_BYTES);
      return inflatedForm(file, p);
    })();
    return this.inflated;
  }

  async bytes(spans: Span[]): Promise<Buffer> {
    if (this.ts.deflated) {
      const all = await this.whole();
      return Buffer.concat(spans.map((s) => all.subarray(s.offset, s.offset + s.length)));
    }
    return collect(await this.stream(spans), MAX_DECODED_BYTES);
  }

  /** One span of a blob stored as is, read whole (into `into` when given). */
  read(span: Span, into?: Buffer): Promise<Buffer> {
    return this.deps.blobs.read(this.row.blobKey, span.length, into, span.offset);
  }

  async stream(spans: Span[]): Promise<Readable> {
    if (this.ts.deflated) return Readable.from([await this.bytes(spans)]);
    const ranges = spans.filter((s) => s.length).map((s) => ({ start: s.offset, end: s.offset + s.length - 1 }));
    return readRanges(this.deps.blobs, this.row.blobKey, ranges);
  }

  /** The stored Image Pixel module, read from the bytes before the pixel data. */
  async module(): Promise<PixelModule> {
    if (this.ts.deflated) return moduleOfHeader(await this.whole(), true);
    const end = this.row.bulk[Tag.PixelData]?.offset;
    if (!end) throw new PixelError(422, 'BadPixelModule', `instance ${this.row.sopInstanceUid} has no pixel data`);
    return moduleOfHeader(await this.bytes([{ offset: 0, length: end }]));
  }
}

async function collect(body: AsyncIterable<Buffer | Uint8Array>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) throw new PixelError(406, 'TooLargeToTranscode', `more than ${limit} bytes would have to be read into memory to convert this`);
    chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }
  return Buffer.concat(chunks, n);
}

/**
 * Frames as native little-endian pixels or encoded in `c.to`. With `eager`
 * the frames are made now (their lengths are then known, for one body);
 * otherwise each is made when its part is sent, so one frame at a time is
 * in memory.
 */
async function pixelParts(c: Extract<Conversion, { kind: 'pixels' }>, src: StoredBytes, frames: Span[][], eager: boolean): Promise<OutPart[]> {
  const vr = src.row.bulk[Tag.PixelData]?.vr ?? 'OW';
  // Native frames made little endian need only their bytes; decoding and encoding need the pixel module.
  const swapOnly = !src.ts.encapsulated && c.to === EXPLICIT_VR_LE;
  const module = swapOnly ? undefined : await src.module();
  if (module && c.to !== EXPLICIT_VR_LE && !src.pixels?.canEncode(c.to, module)) throw new CannotEncode(module, c.to);
  const make = async (spans: Span[]): Promise<Buffer> => {
    const bytes = await src.bytes(spans);
    if (!module) return littleEndianFrame(src.ts, bytes, vr);
    const native = await nativeFrame(src.ts, bytes, module, vr, src.pixels);
    if (c.to === EXPLICIT_VR_LE) return native.pixels;
    return (await encodeFrame(c.to, native, src.pixels)).bytes;
  };
  if (eager) {
    const made: Buffer[] = [];
    for (const spans of frames) made.push(await make(spans));
    return made.map((b) => ({ contentType: c.contentType, length: b.length, body: () => b }));
  }
  return frames.map((spans) => ({ contentType: c.contentType, body: () => make(spans) }));
}

/**
 * A whole instance as a conversion makes it. A transcoded instance is made
 * in memory (stored instances up to MAX_CONVERT_BYTES): now with `eager`,
 * so its length is known; else when its part is sent, one instance at a
 * time. One chosen by default that cannot be converted (too large, pixel
 * data Cairn cannot decode after all) is sent as stored: its part's content
 * type is set before the part's head is written.
 */
async function instanceParts(c: Conversion, r: StoredInstance, deps: Deps, eager: boolean): Promise<OutPart[]> {
  if (c.kind !== 'transcode') return partsOf(c, { instance: r, deps });
  const stored = { kind: 'as-stored' as const, multipart: c.multipart, contentType: `${DICOM}; transfer-syntax=${r.transferSyntaxUid}` };
  if (r.size > MAX_CONVERT_BYTES) {
    if (c.fallback) return partsOf(stored, { instance: r, deps });
    throw new ApiError(
      406,
      'TooLargeToTranscode',
      `instance ${r.sopInstanceUid} is larger than Cairn transcodes (${MAX_CONVERT_BYTES} bytes); ask for its frames`,
    );
  }
  const make = async (): Promise<Buffer | null> => transcodedInstance(await deps.blobs.read(r.blobKey, r.size), c, deps);
  if (eager) {
    const made = await make();
    if (!made) return partsOf(stored, { instance: r, deps });
    return [{ contentType: c.contentType, length: made.length, body: () => made }];
  }
  const part: OutPart = {
    contentType: c.contentType,
    body: async () => {
      const made = await make();
      if (made) return made;
      part.contentType = stored.contentType;
      return deps.blobs.read(r.blobKey, r.size);
    },
  };
  return [part];
}

/**
 * A Part-10 file in the syntax a transcode conversion names, made in the
 * pixel pool; null when a conversion chosen by default cannot be made (the
 * instance then goes as stored).
 */
export async function transcodedInstance(file: Buffer, c: Extract<Conversion, { kind: 'transcode' }>, deps: Deps): Promise<Buffer | null> {
  try {
    return await (deps.pixels ? deps.pixels.transcode(file, c.to) : transcodeInstance(file, c.to));
  } catch (err) {
    if (c.fallback && err instanceof ApiError && err.status === 406) return null;
    throw err;
  }
}

/** Stored bytes: a whole instance, or the spans of a blob that make each frame or value. */
type Source = { instance: StoredInstance; deps: Deps } | { src: StoredBytes; frames: Span[][] };

/** The parts of stored bytes sent as they are. */
function partsOf(c: Conversion, from: Source): OutPart[] {
  if ('instance' in from) {
    const r = from.instance;
    const { blobs } = from.deps;
    const small = r.size <= SMALL_BLOB;
    return [
      {
        contentType: c.contentType,
        length: r.size,
        body: () => (small ? blobs.read(r.blobKey, r.size) : blobs.get(r.blobKey)),
        fill: small ? (into) => blobs.read(r.blobKey, r.size, into) : undefined,
      },
    ];
  }
  return from.frames.map((spans) => spanPart(c.contentType, from.src, spans));
}

/**
 * A part of stored spans. A frame or value that is one small span of a blob
 * stored as is (the common case: a native frame, an encapsulated frame of one
 * fragment) is read with one read at its offset, straight into the response
 * where it goes alone; anything else is streamed.
 */
function spanPart(contentType: string, src: StoredBytes, spans: Span[]): OutPart {
  const length = spans.reduce((a, s) => a + s.length, 0);
  const [span] = spans;
  if (spans.length !== 1 || src.ts.deflated || length > SMALL_BLOB) return { contentType, length, body: () => src.stream(spans) };
  return { contentType, length, body: () => src.read(span), fill: (into) => src.read(span, into) };
}

function withLength(part: OutPart): OutPart & { length: number } {
  return { ...part, length: part.length! };
}

function mediaTypeOf(contentType: string): string {
  return contentType.split(';')[0];
}

/** RFC 9110 §14.1.2: a single `bytes=a-b`, `a-` or `-n` range. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === ''))
    throw new ApiError(416, 'RangeNotSatisfiable', `unsupported Range "${header}"; one bytes range is supported`, { 'Content-Range': `bytes */${size}` });
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size)
    throw new ApiError(416, 'RangeNotSatisfiable', `Range "${header}" is outside the ${size} bytes of the value`, { 'Content-Range': `bytes */${size}` });
  return { start, end };
}
