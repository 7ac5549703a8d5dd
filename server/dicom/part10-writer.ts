import dcmjs from 'dcmjs';
import type { DicomJson, JsonAttribute } from './json.js';
import { Tag } from './tags.js';
import { TRANSFER_SYNTAXES } from './transfer-syntax.js';

// A Part-10 file (PS3.10 §7) from a DICOM JSON data set (PS3.18 Annex F) and
// the bulk data values its BulkDataURIs named, for STOW-RS of metadata and
// bulk data (PS3.18 §10.5.1.4). dcmjs writes the encoding: even value lengths
// (PS3.5 §7.1), the File Meta group with its group length, encapsulated pixel
// data as a Basic Offset Table and one fragment per frame (PS3.5 §A.4).

/** Written into the File Meta Information of every file Cairn builds (PS3.10 §7.1). */
const IMPLEMENTATION_CLASS_UID = '2.25.209127458245738958542016946716937312829';

export class Part10WriteError extends Error {}

/**
 * `values` holds the bytes of each top-level attribute given by BulkDataURI;
 * `frames`, when the pixel data is encapsulated, its frames in order. The
 * data set's own File Meta attributes (group 0002) are replaced.
 */
export function writePart10(dataset: DicomJson, values: ReadonlyMap<string, Buffer>, transferSyntaxUid: string, frames?: readonly Buffer[]): Buffer {
  const ts = TRANSFER_SYNTAXES.get(transferSyntaxUid);
  if (!ts?.servedAsStored) throw new Part10WriteError(`transfer syntax ${transferSyntaxUid} cannot be written`);
  const sopClassUid = text(dataset[Tag.SOPClassUID]);
  const sopInstanceUid = text(dataset[Tag.SOPInstanceUID]);
  if (!sopClassUid || !sopInstanceUid) throw new Part10WriteError('the data set has no SOP Class UID or SOP Instance UID');
  const meta = {
    '00020001': { vr: 'OB', Value: [arrayBuffer(Buffer.from([0, 1]))] },
    '00020002': { vr: 'UI', Value: [sopClassUid] },
    '00020003': { vr: 'UI', Value: [sopInstanceUid] },
    '00020010': { vr: 'UI', Value: [transferSyntaxUid] },
    '00020012': { vr: 'UI', Value: [IMPLEMENTATION_CLASS_UID] },
  };
  const own = { ...dataset };
  // Encapsulated pixel data goes in as frames, not as one value.
  if (frames) delete own[Tag.PixelData];
  const body = toDcmjs(own, values, true);
  // DICOM JSON is UTF-8 (PS3.18 §F.2), and so is the text Cairn writes.
  if (hasNonAscii(dataset)) body[Tag.SpecificCharacterSet] = { vr: 'CS', Value: ['ISO_IR 192'] };
  if (frames) {
    if (!ts.encapsulated) throw new Part10WriteError('frames are given for a native transfer syntax');
    const vr = 'OB';
    body[Tag.PixelData] = { vr, Value: frames.map(arrayBuffer) };
  }
  const dict = new dcmjs.data.DicomDict(meta);
  dict.dict = body;
  return Buffer.from(dict.write({ fragmentMultiframe: false }));
}

type DcmjsDict = Record<string, { vr: string; Value: unknown[] }>;

function toDcmjs(ds: DicomJson, values: ReadonlyMap<string, Buffer>, top: boolean): DcmjsDict {
  const out: DcmjsDict = {};
  for (const [tag, attr] of Object.entries(ds)) {
    // File Meta and group lengths are written by the writer; Transfer Syntax UID is never part of the data set.
    if (tag.startsWith('0002') || tag.endsWith('0000')) continue;
    out[tag] = { vr: attr.vr, Value: elementValue(tag, attr, values, top) };
  }
  return out;
}

function elementValue(tag: string, attr: JsonAttribute, values: ReadonlyMap<string, Buffer>, top: boolean): unknown[] {
  if (attr.BulkDataURI !== undefined) {
    const bytes = top ? values.get(tag) : undefined;
    if (!bytes) throw new Part10WriteError(`no bulk data for ${tag}`);
    return [arrayBuffer(bytes)];
  }
  if (attr.InlineBinary !== undefined) return [arrayBuffer(Buffer.from(attr.InlineBinary, 'base64'))];
  const v = attr.Value ?? [];
  if (attr.vr === 'SQ') return v.map((item) => toDcmjs((item ?? {}) as DicomJson, values, false));
  if (attr.vr === 'PN') return v.map((p) => p ?? {});
  return v.map((x) => (x === null ? '' : x));
}

function text(attr: JsonAttribute | undefined): string | undefined {
  const v = attr?.Value?.[0];
  return typeof v === 'string' && v ? v : undefined;
}

function hasNonAscii(ds: DicomJson): boolean {
  const text = JSON.stringify(ds);
  return Buffer.byteLength(text, 'utf8') !== text.length;
}

function arrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}
