import type { Caller } from './access.js';
import { readRanges } from './blob/spans.js';
import type { FramedInstance, StoredInstance } from './db/lookup.js';
import type { Span } from './db/rows.js';
import type { AppDeps } from './deps.js';
import { Tag } from './dicom/tags.js';
import { transferSyntax, type TransferSyntax } from './dicom/transfer-syntax.js';
import { deidentifiedBytes } from './deid/bytes.js';
import { ApiError } from './errors.js';
import { typeMatches, type Acceptable } from './http/accept.js';
import type { OutPart } from './http/multipart.js';
import type { Reply } from './http/reply.js';

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
 * What stored bytes are made into before they are sent. Cairn sends them as
 * stored; a transcoder (another transfer syntax) or a renderer (a consumer
 * media type, PS3.18 §8.7.4) is another case here, chosen by conversionFor
 * and built by partsOf.
 */
export type Conversion = { kind: 'as-stored'; multipart: boolean; contentType: string };

/**
 * The representations a retrieve sends: a whole instance as application/dicom;
 * pixel data (frames, or the bulk data of encapsulated pixel data) under the
 * media type of its syntax; the bytes of any other bulk data value.
 */
export type Representation = 'instance' | 'pixels' | 'value';

/**
 * How to serve `stored` as `what` for this Accept, or null when nothing the
 * client accepts can be made from it (→ 406).
 */
export function conversionFor(accepts: Acceptable[], stored: TransferSyntax, what: Representation): Conversion | null {
  if (!stored.servedAsStored) return null;
  if (what === 'instance') return instanceAsStored(accepts, stored);
  if (what === 'pixels') return pixelsAsStored(accepts, stored);
  return { kind: 'as-stored', multipart: wantsMultipartValue(accepts), contentType: OCTETS };
}

const OCTETS = 'application/octet-stream';

/**
 * An instance goes as stored with `transfer-syntax=*`, with the stored
 * syntax named, or with no transfer-syntax parameter (see CONFORMANCE.md);
 * a named syntax other than the stored one would need transcoding.
 */
function instanceAsStored(accepts: Acceptable[], ts: TransferSyntax): Conversion | null {
  for (const a of accepts) {
    if (!typeMatches(a.type, 'application/dicom')) continue;
    if (a.transferSyntax === undefined || a.transferSyntax === '*' || a.transferSyntax === ts.uid) {
      return { kind: 'as-stored', multipart: a.multipart, contentType: `application/dicom; transfer-syntax=${ts.uid}` };
    }
  }
  return null;
}

/**
 * Pixel data as stored (PS3.18 §8.7.3.5, Table 8.7.3-5): native pixel data
 * as application/octet-stream, compressed data under its own media type, or
 * as application/octet-stream when the client accepts any transfer syntax
 * (`transfer-syntax=*`, as OHIF asks for frames).
 */
function pixelsAsStored(accepts: Acceptable[], ts: TransferSyntax): Conversion | null {
  const own = ts.pixelMediaType;
  for (const a of accepts) {
    const tsOk = a.transferSyntax === undefined || a.transferSyntax === '*' || a.transferSyntax === ts.pixelLabel || a.transferSyntax === ts.uid;
    if (!tsOk) continue;
    if (typeMatches(a.type, own)) return { kind: 'as-stored', multipart: a.multipart, contentType: `${own}; transfer-syntax=${ts.pixelLabel}` };
    if (ts.encapsulated && a.type === OCTETS && a.transferSyntax === '*') {
      return { kind: 'as-stored', multipart: a.multipart, contentType: `${OCTETS}; transfer-syntax=${ts.pixelLabel}` };
    }
  }
  return null;
}

/** A bulk data value goes as one body unless only multipart payloads are accepted. */
function wantsMultipartValue(accepts: Acceptable[]): boolean {
  return !accepts.some((a) => !a.multipart && (a.type === OCTETS || a.type === '*/*')) && accepts.some((a) => a.multipart);
}

/** The 406 for a representation that cannot be served, saying what the client could ask for instead. */
function notAcceptable(asked: Asked, ts: string, sopInstanceUid: string): ApiError {
  if (asked.kind === 'instances') {
    return new ApiError(
      406,
      'NotAcceptable',
      `no acceptable media type for instance ${sopInstanceUid} stored as ${ts}; Cairn sends application/dicom in the stored transfer syntax (ask with transfer-syntax=* or that UID)`,
    );
  }
  if (asked.kind === 'frames')
    return new ApiError(
      406,
      'NotAcceptable',
      `frames are stored as ${ts}; Cairn does not transcode (accept its media type, or application/octet-stream with transfer-syntax=*)`,
    );
  return new ApiError(406, 'NotAcceptable', `pixel data is stored as ${ts}; Cairn does not transcode`);
}

/** Instances up to this size are read whole into one buffer instead of streamed. */
export const SMALL_BLOB = 4 * 1024 * 1024;

type Blobs = Pick<AppDeps, 'blobs'>;
type Seam = Blobs & Partial<Pick<AppDeps, 'db' | 'config' | 'research'>>;

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
    return deidentifiedBytes({ ...deps, db: deps.db, config: deps.config }, view, caller, accepts, asked, async () => asStored(deps, accepts, asked));
  return asStored(deps, accepts, asked);
}

function asStored(deps: Blobs, accepts: Acceptable[], asked: Asked): Reply {
  if (asked.kind === 'instances') return instances(deps, accepts, asked);
  if (asked.kind === 'frames') return frames(deps, accepts, asked);
  return bulk(deps, accepts, asked);
}

function decide(accepts: Acceptable[], asked: Asked, ts: string, sopInstanceUid: string, what: Representation): Conversion {
  const c = conversionFor(accepts, transferSyntax(ts), what);
  if (!c) throw notAcceptable(asked, ts, sopInstanceUid);
  return c;
}

function instances(deps: Blobs, accepts: Acceptable[], asked: Extract<Asked, { kind: 'instances' }>): Reply {
  const chosen = asked.rows.map((r) => decide(accepts, asked, r.transferSyntaxUid, r.sopInstanceUid, 'instance'));
  const parts = asked.rows.flatMap((r, i) => partsOf(chosen[i], { instance: r }, deps));
  // A bare application/dicom for one instance is answered with that instance alone.
  if (asked.one && parts.length === 1 && !chosen[0].multipart) return { multipart: false, part: withLength(parts[0]) };
  return { multipart: true, partType: 'application/dicom', parts };
}

function frames(deps: Blobs, accepts: Acceptable[], asked: Extract<Asked, { kind: 'frames' }>): Reply {
  const { row } = asked;
  if (!row.frames) throw new ApiError(404, 'NoFrames', `instance ${row.sopInstanceUid} has no pixel data frames that can be located`);
  const missing = asked.frames.find((n) => n > row.frames!.length);
  if (missing) throw new ApiError(404, 'FrameNotFound', `frame ${missing} does not exist; the instance has ${row.frames.length}`);
  const c = decide(accepts, asked, row.transferSyntaxUid, row.sopInstanceUid, 'pixels');
  const parts = partsOf(c, { key: row.blobKey, frames: asked.frames.map((n) => row.frames![n - 1]) }, deps);
  if (!c.multipart && parts.length === 1) return { multipart: false, part: withLength(parts[0]) };
  return { multipart: true, partType: mediaTypeOf(c.contentType), parts };
}

function bulk(deps: Blobs, accepts: Acceptable[], asked: Extract<Asked, { kind: 'bulk' }>): Reply {
  const { row, tag } = asked;
  const el = row.bulk[tag];
  if (!el) throw new ApiError(404, 'BulkDataNotFound', `instance ${row.sopInstanceUid} has no bulk data element ${tag}`);
  const ts = transferSyntax(row.transferSyntaxUid);
  // PS3.18 §8.7.3.5: compressed pixel data is sent as its frames, without fragment delimiters.
  if (tag === Tag.PixelData && row.frames && ts.encapsulated) {
    const c = decide(accepts, asked, ts.uid, row.sopInstanceUid, 'pixels');
    return { multipart: true, partType: mediaTypeOf(c.contentType), parts: partsOf(c, { key: row.blobKey, frames: row.frames }, deps) };
  }
  const c = decide(accepts, asked, ts.uid, row.sopInstanceUid, 'value');
  const range = parseRange(asked.range, el.length);
  const headers: Record<string, string> = { 'Accept-Ranges': 'bytes' };
  if (range || !c.multipart) {
    const r = range ?? { start: 0, end: el.length - 1 };
    if (range) headers['Content-Range'] = `bytes ${r.start}-${r.end}/${el.length}`;
    const part = {
      contentType: c.contentType,
      length: r.end - r.start + 1,
      body: () => (el.length ? deps.blobs.get(row.blobKey, { start: el.offset + r.start, end: el.offset + r.end }) : Buffer.alloc(0)),
    };
    return { multipart: false, part, status: range ? 206 : undefined, headers };
  }
  return { multipart: true, partType: OCTETS, parts: partsOf(c, { key: row.blobKey, frames: [[el]] }, deps), headers };
}

/** Stored bytes: a whole instance, or the spans of a blob that make each frame or value. */
type Source = { instance: StoredInstance } | { key: string; frames: Span[][] };

/** The parts a conversion makes of stored bytes. */
function partsOf(c: Conversion, src: Source, deps: Blobs): OutPart[] {
  switch (c.kind) {
    case 'as-stored': {
      if ('instance' in src) {
        const r = src.instance;
        const small = r.size <= SMALL_BLOB;
        return [
          {
            contentType: c.contentType,
            length: r.size,
            body: () => (small ? deps.blobs.read(r.blobKey, r.size) : deps.blobs.get(r.blobKey)),
            fill: small ? (into) => deps.blobs.read(r.blobKey, r.size, into) : undefined,
          },
        ];
      }
      return src.frames.map((spans) => ({
        contentType: c.contentType,
        length: spans.reduce((a, s) => a + s.length, 0),
        body: spansBody(deps, src.key, spans),
      }));
    }
  }
}

/** Ranged reads of the spans of one frame or value: on S3, one request per run of nearby spans. */
function spansBody(deps: Blobs, key: string, spans: Span[]) {
  const ranges = spans.filter((s) => s.length).map((s) => ({ start: s.offset, end: s.offset + s.length - 1 }));
  return () => readRanges(deps.blobs, key, ranges);
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
