import { Readable } from 'node:stream';
import type { Caller } from '../access.js';
import { archiveContext, failAlone, storeInstance, type StoreOutcome } from '../archive.js';
import type { AppDeps } from '../deps.js';
import type { DicomJson, JsonAttribute } from '../dicom/json.js';
import { NativeXmlError, nativeXmlToJson } from '../dicom/native-xml.js';
import { Part10WriteError, writePart10 } from '../dicom/part10-writer.js';
import { Tag } from '../dicom/tags.js';
import { EXPLICIT_VR_LE, TRANSFER_SYNTAXES, type TransferSyntax } from '../dicom/transfer-syntax.js';
import { ApiError, DicomStatus } from '../errors.js';
import { parseMediaType, type MultipartReader } from '../http/multipart.js';

// STOW-RS of metadata and bulk data (PS3.18 §10.5.1.4, Table 10.5.2-1):
// multipart/related; type="application/dicom+json" or "application/dicom+xml".
// The metadata parts hold DICOM JSON (PS3.18 Annex F), one data set or an
// array of them, or one Native DICOM Model document each (PS3.19 §A.1),
// read into DICOM JSON (dicom/native-xml.ts); every other
// part is bulk data, found by its Content-Location, which a BulkDataURI of
// the metadata names. Each data set becomes a Part-10 file (dicom/
// part10-writer.ts) in the transfer syntax its pixel data part's media type
// says (PS3.18 Table 8.7.3-5), and is stored through the one store path.
// A data set whose parts are missing, given twice or do not fit fails alone.

const JSON_TYPE = 'application/dicom+json';
const XML_TYPE = 'application/dicom+xml';
const OCTETS = 'application/octet-stream';
/** Bulk data is held in memory until its data set is written: this much per request at most. */
export const MAX_STOW_JSON_BULK_BYTES = 512 * 1024 * 1024;

interface BulkPart {
  type: string;
  transferSyntax?: string;
  bytes: Buffer;
  /** Another part had the same Content-Location. */
  duplicate: boolean;
}

/** `metadataType`: the multipart type parameter, application/dicom+json or application/dicom+xml. */
export async function storeJsonParts(
  deps: AppDeps,
  caller: Caller,
  reader: MultipartReader,
  studyUid: string | undefined,
  metadataType = JSON_TYPE,
): Promise<StoreOutcome[]> {
  // A data set to build, or an XML document that could not be read: that instance fails alone.
  const datasets: (DicomJson | Unreadable)[] = [];
  const bulk = new Map<string, BulkPart>();
  let held = 0;
  let parts = 0;
  for (let part = await reader.next(); part; part = await reader.next()) {
    if (++parts > deps.config.maxStowParts)
      throw new ApiError(413, 'TooManyParts', `the request holds more than ${deps.config.maxStowParts} parts (MAX_STOW_PARTS)`);
    const mt = parseMediaType(part.headers['content-type'] ?? OCTETS);
    if (mt.type === metadataType && mt.type === JSON_TYPE) {
      datasets.push(...metadataOf(await readAll(part.body, deps.config.maxHeaderBytes, 'a metadata part', 'MAX_HEADER_BYTES')));
      continue;
    }
    if (mt.type === metadataType && mt.type === XML_TYPE) {
      datasets.push(xmlMetadataOf(await readAll(part.body, deps.config.maxHeaderBytes, 'a metadata part', 'MAX_HEADER_BYTES'), deps.config.maxSequenceDepth));
      continue;
    }
    const location = part.headers['content-location']?.trim();
    const bytes = await readAll(part.body, MAX_STOW_JSON_BULK_BYTES - held, 'the bulk data of the request', 'its limit');
    held += bytes.length;
    // A part no BulkDataURI can name (no Content-Location) is read and left.
    if (!location) continue;
    const seen = bulk.get(location);
    bulk.set(location, { type: mt.type, transferSyntax: mt.params['transfer-syntax'], bytes, duplicate: seen !== undefined });
  }
  if (!datasets.length) throw new ApiError(400, 'MalformedMultipart', `the request holds no ${metadataType} metadata part`);
  const ctx = archiveContext(deps);
  const outcomes: StoreOutcome[] = [];
  for (const ds of datasets) {
    if (ds instanceof Unreadable) {
      outcomes.push({ ok: false, reason: DicomStatus.CannotUnderstand, message: ds.message });
      continue;
    }
    const built = buildInstance(ds, bulk);
    outcomes.push(built.ok ? await failAlone(storeInstance(ctx, caller, Readable.from([built.bytes]), studyUid)) : built.failure);
  }
  return outcomes;
}

async function readAll(body: AsyncIterable<Buffer>, limit: number, what: string, limitName: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new ApiError(413, 'PayloadTooLarge', `${what} is larger than ${limitName} allows`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function metadataOf(bytes: Buffer): DicomJson[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ApiError(400, 'MalformedMetadata', `a ${JSON_TYPE} part is not JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  if (!list.length || list.some((d) => d === null || typeof d !== 'object' || Array.isArray(d)))
    throw new ApiError(400, 'MalformedMetadata', `a ${JSON_TYPE} part must hold a DICOM JSON data set or an array of them (PS3.18 Annex F)`);
  return list as DicomJson[];
}

/** An application/dicom+xml part that is not a Native DICOM Model document Cairn can read. */
class Unreadable {
  constructor(readonly message: string) {}
}

function xmlMetadataOf(bytes: Buffer, maxSequenceDepth: number): DicomJson | Unreadable {
  try {
    return nativeXmlToJson(bytes.toString('utf8'), maxSequenceDepth);
  } catch (err) {
    if (err instanceof NativeXmlError) return new Unreadable(`an ${XML_TYPE} part cannot be read: ${err.message}`);
    throw err;
  }
}

type Built = { ok: true; bytes: Buffer } | { ok: false; failure: StoreOutcome & { ok: false } };

/** One data set and the bulk data parts it names, as a Part-10 file; or why not. */
function buildInstance(given: DicomJson, bulk: ReadonlyMap<string, BulkPart>): Built {
  let ds = given;
  const refs = { sopInstanceUid: first(ds[Tag.SOPInstanceUID]), sopClassUid: first(ds[Tag.SOPClassUID]) };
  const fail = (reason: number, message: string): Built => ({ ok: false, failure: { ok: false, reason, message, ...refs } });
  if (!isDataset(ds)) return fail(DicomStatus.CannotUnderstand, 'the metadata is not a DICOM JSON data set (each attribute needs a "vr")');
  // Bulk data inside sequences (an icon image, a LUT) is small: it is written inline.
  const inlined = inlineNestedBulk(ds, bulk);
  if (typeof inlined === 'string') return fail(inlined.startsWith('no part') ? DicomStatus.DataSetDoesNotMatchSopClass : DicomStatus.CannotUnderstand, inlined);
  ds = inlined;
  const values = new Map<string, Buffer>();
  const parts = new Map<string, BulkPart>();
  for (const [tag, attr] of Object.entries(ds)) {
    if (attr.BulkDataURI === undefined) continue;
    const part = bulk.get(attr.BulkDataURI);
    if (!part) return fail(DicomStatus.DataSetDoesNotMatchSopClass, `no part has Content-Location ${attr.BulkDataURI} (the BulkDataURI of ${tag})`);
    if (part.duplicate) return fail(DicomStatus.CannotUnderstand, `more than one part has Content-Location ${attr.BulkDataURI} (the BulkDataURI of ${tag})`);
    parts.set(tag, part);
    values.set(tag, part.bytes);
  }
  const pixels = parts.get(Tag.PixelData);
  let ts: TransferSyntax = TRANSFER_SYNTAXES.get(EXPLICIT_VR_LE) as TransferSyntax;
  let frames: Buffer[] | undefined;
  if (pixels) {
    const chosen = syntaxOf(pixels);
    if (typeof chosen === 'string') return fail(DicomStatus.DataSetDoesNotMatchSopClass, chosen);
    ts = chosen;
    const problem = ts.encapsulated ? framesProblem(ds) : nativeLengthProblem(ds, pixels.bytes.length);
    if (problem) return fail(DicomStatus.DataSetDoesNotMatchSopClass, problem);
    if (ts.encapsulated) {
      frames = [pixels.bytes];
      values.delete(Tag.PixelData);
    }
  }
  const said = first(ds[Tag.TransferSyntaxUID]);
  if (pixels && said && said !== ts.uid)
    return fail(DicomStatus.DataSetDoesNotMatchSopClass, `the metadata says transfer syntax ${said}, the pixel data part is ${ts.uid}`);
  const docPart = parts.get(ENCAPSULATED_DOCUMENT);
  const withMime = docPart && !ds[MIME_TYPE] && docPart.type !== OCTETS ? { ...ds, [MIME_TYPE]: { vr: 'LO', Value: [docPart.type] } } : ds;
  try {
    return { ok: true, bytes: writePart10(withMime, values, ts.uid, frames) };
  } catch (err) {
    if (err instanceof Part10WriteError) return fail(DicomStatus.DataSetDoesNotMatchSopClass, err.message);
    return fail(DicomStatus.CannotUnderstand, `the data set cannot be encoded: ${(err as Error).message}`);
  }
}

/**
 * The data set with every BulkDataURI inside a sequence replaced by the
 * named part's bytes as InlineBinary (PS3.18 §F.2.7 allows either form); or
 * why not: a URI no part has, or one that two parts claim.
 */
function inlineNestedBulk(ds: DicomJson, bulk: ReadonlyMap<string, BulkPart>): DicomJson | string {
  let problem: string | undefined;
  const item = (d: DicomJson, nested: boolean): DicomJson => {
    const out: DicomJson = {};
    for (const [tag, attr] of Object.entries(d)) {
      if (nested && attr.BulkDataURI !== undefined) {
        const part = bulk.get(attr.BulkDataURI);
        if (!part) problem ??= `no part has Content-Location ${attr.BulkDataURI} (the BulkDataURI of ${tag} inside a sequence)`;
        else if (part.duplicate) problem ??= `more than one part has Content-Location ${attr.BulkDataURI} (the BulkDataURI of ${tag} inside a sequence)`;
        const { BulkDataURI: _, ...rest } = attr;
        out[tag] = part ? { ...rest, InlineBinary: part.bytes.toString('base64') } : rest;
      } else if (attr.vr === 'SQ' && attr.Value) {
        out[tag] = { ...attr, Value: attr.Value.map((v) => (v && typeof v === 'object' ? item(v as DicomJson, true) : v)) };
      } else out[tag] = attr;
    }
    return out;
  };
  const made = item(ds, false);
  return problem ?? made;
}

const ENCAPSULATED_DOCUMENT = '00420011';
const MIME_TYPE = '00420012';

/**
 * The transfer syntax of pixel data sent with this media type (PS3.18
 * Table 8.7.3-5): the part's transfer-syntax parameter when it names one of
 * that media type, else the first syntax of the table with it (JPEG
 * Baseline for image/jpeg, JPEG-LS Lossless for image/jls, …); native
 * pixel data (application/octet-stream) as Explicit VR Little Endian.
 */
function syntaxOf(part: BulkPart): TransferSyntax | string {
  if (part.type === OCTETS) {
    const named = part.transferSyntax ? TRANSFER_SYNTAXES.get(part.transferSyntax) : undefined;
    if (part.transferSyntax && part.transferSyntax !== '*' && named?.uid !== EXPLICIT_VR_LE)
      return `native pixel data is written as Explicit VR Little Endian, not ${part.transferSyntax}`;
    return TRANSFER_SYNTAXES.get(EXPLICIT_VR_LE) as TransferSyntax;
  }
  const all = [...TRANSFER_SYNTAXES.values()].filter((t) => t.encapsulated && t.servedAsStored && t.pixelMediaType === part.type);
  if (!all.length) return `pixel data cannot be sent as ${part.type}`;
  if (!part.transferSyntax) return all[0];
  return all.find((t) => t.uid === part.transferSyntax) ?? `transfer syntax ${part.transferSyntax} is not one of ${part.type}`;
}

function framesProblem(ds: DicomJson): string | undefined {
  const n = Number(first(ds[Tag.NumberOfFrames]) ?? 1);
  return n > 1 ? `compressed pixel data of ${n} frames in one part is not supported; send one frame per instance or native pixel data` : undefined;
}

/** Native pixel data holds exactly Rows × Columns × Samples per Pixel × Bits Allocated / 8 bytes per frame (PS3.5 §8.1.1), padded to even. */
function nativeLengthProblem(ds: DicomJson, length: number): string | undefined {
  const n = (tag: string) => Number(first(ds[tag]));
  const [rows, columns, samples, bits] = [n(Tag.Rows), n(Tag.Columns), n(Tag.SamplesPerPixel), n(Tag.BitsAllocated)];
  if (![rows, columns, samples, bits].every((v) => Number.isInteger(v) && v > 0))
    return 'native pixel data needs Rows, Columns, Samples per Pixel and Bits Allocated in the metadata';
  const frames = Number(first(ds[Tag.NumberOfFrames]) ?? 1) || 1;
  // YBR_FULL_422 and YBR_PARTIAL_422 store two samples a pixel though Samples per Pixel is 3 (PS3.3 §C.7.6.3.1.2).
  const stored = samples === 3 && /^YBR_(FULL|PARTIAL)_422$/.test(first(ds[Tag.PhotometricInterpretation]) ?? '') ? 2 : samples;
  const expected = Math.ceil((rows * columns * stored * bits * frames) / 8);
  if (length !== expected && length !== expected + (expected % 2))
    return `the pixel data part holds ${length} bytes; Rows, Columns, Samples per Pixel, Bits Allocated and Number of Frames make ${expected}`;
  return undefined;
}

function isDataset(ds: DicomJson): boolean {
  return Object.entries(ds).every(
    ([tag, a]) => /^[0-9A-Fa-f]{8}$/.test(tag) && a !== null && typeof a === 'object' && typeof (a as JsonAttribute).vr === 'string',
  );
}

function first(attr: JsonAttribute | undefined): string | undefined {
  const v = attr?.Value?.[0];
  return v === undefined || v === null ? undefined : String(v);
}
