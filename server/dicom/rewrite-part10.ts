import dcmjs from 'dcmjs';
import { toDicomJson, type DicomJson, type JsonAttribute } from './json.js';
import { scanPart10, type ScanOptions } from './scan.js';
import { Tag } from './tags.js';

// A Part-10 instance rewritten through its DICOM JSON: the instance is read
// by the same scanner as at ingest (scan.ts), its header handed to `rewrite`
// as DICOM JSON and written back in the stored transfer syntax. Bulk data
// and pixel data are not converted: their bytes go back as stored when
// `keep` says so, and are dropped otherwise. Used to serve de-identified
// instances; the whole instance is in memory, as a retrieve of one small
// instance already is.

type DcmjsElement = { vr: string; Value?: unknown[] };
type DcmjsDict = Record<string, DcmjsElement>;

const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);

export interface Part10Rewrite {
  /** The data set to write for the data set read (file meta information aside). */
  rewrite(attrs: DicomJson): DicomJson;
  /** Whether a bulk data element (pixel data among them), set aside unread, is written back. */
  keep(tag: string): boolean;
  /** The file meta information's (0002,xxxx) values to replace, by tag. */
  meta?(attrs: DicomJson): Record<string, string>;
}

/** `bytes` (a Part-10 file) rewritten; throws ParseError-like errors of the scanner when it cannot be read. */
export async function rewritePart10(bytes: Buffer, how: Part10Rewrite, opts: ScanOptions): Promise<Buffer> {
  const scan = await scanPart10(
    (async function* () {
      yield bytes;
    })(),
    opts,
  );
  const header = scan.header;
  const read = dcmjs.data.DicomMessage.readFile(header.buffer.slice(header.byteOffset, header.byteOffset + header.length) as ArrayBuffer, {
    ignoreErrors: false,
    untilTag: null,
    includeUntilTagValue: false,
    noCopy: false,
    forceStoreRaw: false,
  });
  const attrs = toDicomJson(read.dict as DcmjsDict, { implicit: scan.implicitVr, littleEndian: scan.littleEndian });
  const out = toDcmjs(how.rewrite(attrs));
  const slice = (s: { offset: number; length: number }) => bytes.buffer.slice(bytes.byteOffset + s.offset, bytes.byteOffset + s.offset + s.length);
  for (const [tag, el] of Object.entries(scan.bulk)) if (how.keep(tag)) out[tag] = { vr: el.vr, Value: [slice(el)] };
  const px = scan.pixelData;
  if (px && how.keep(Tag.PixelData)) out[Tag.PixelData] = { vr: px.vr, Value: px.fragments.map(slice) };
  const meta = read.meta as DcmjsDict;
  for (const [tag, value] of Object.entries(how.meta?.(attrs) ?? {})) meta[tag] = { vr: meta[tag]?.vr ?? 'UI', Value: [value] };
  const written = new dcmjs.data.DicomDict(meta);
  written.dict = sortedDict(out);
  return Buffer.from(written.write());
}

/** DICOM JSON back to the dcmjs dict form: InlineBinary to ArrayBuffers, items in turn. */
function toDcmjs(attrs: DicomJson): DcmjsDict {
  const out: DcmjsDict = {};
  for (const [tag, attr] of Object.entries(attrs)) out[tag] = elementOf(attr);
  return out;
}

function elementOf(attr: JsonAttribute): DcmjsElement {
  if (attr.vr === 'SQ') return { vr: 'SQ', Value: (attr.Value ?? []).map((item) => toDcmjs((item ?? {}) as DicomJson)) };
  if (attr.InlineBinary !== undefined) {
    const b = Buffer.from(attr.InlineBinary, 'base64');
    return { vr: attr.vr, Value: [b.buffer.slice(b.byteOffset, b.byteOffset + b.length)] };
  }
  if (BINARY_VRS.has(attr.vr)) return { vr: attr.vr, Value: [] };
  if (attr.vr === 'AT') return { vr: 'AT', Value: (attr.Value ?? []).map((v) => Number.parseInt(String(v), 16)) };
  return { vr: attr.vr, Value: (attr.Value ?? []).map((v) => (v === null ? '' : v)) };
}

function sortedDict(d: DcmjsDict): DcmjsDict {
  const out: DcmjsDict = {};
  for (const tag of Object.keys(d).sort()) out[tag] = d[tag];
  return out;
}
