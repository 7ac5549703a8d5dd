// DICOM JSON Model (PS3.18 Annex F) from a dcmjs data set.
import { resolveVr, valuesFor, type VrContext } from './vr.js';
import { Tag } from './tags.js';

export interface JsonAttribute {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
}
export type DicomJson = Record<string, JsonAttribute>;

const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
const NUMERIC_STRING_VRS = new Set(['IS', 'DS']);

type DcmjsDict = Record<string, { vr: string; Value?: unknown[] }>;

/**
 * Converts a dcmjs dict (`{ tag: { vr, Value } }`) to clean DICOM JSON, tags
 * in ascending order (§F.2.2), every "vr" one of PS3.5 Table 6.2-1: the
 * registry's choices ("US or SS", "OB or OW", …) that the encoding left open
 * are resolved from the data set (vr.ts).
 */
export function toDicomJson(dict: DcmjsDict, outer: VrContext = { implicit: false, littleEndian: true }): DicomJson {
  const out: DicomJson = {};
  // An item's own Pixel Representation or Bits Allocated (an Icon Image
  // Sequence item has them) governs it; otherwise the enclosing data set's.
  const ctx: VrContext = {
    ...outer,
    pixelRepresentation: numberOf(dict[Tag.PixelRepresentation]) ?? outer.pixelRepresentation,
    bitsAllocated: numberOf(dict[Tag.BitsAllocated]) ?? outer.bitsAllocated,
    waveformBitsAllocated: numberOf(dict[Tag.WaveformBitsAllocated]),
    lutEntries: numberOf(dict[Tag.LUTDescriptor]),
  };
  for (const tag of Object.keys(dict).sort()) {
    // §F.2.2: Group Length attributes are not included.
    if (tag.endsWith('0000')) continue;
    const el = dict[tag];
    let vr = el.vr;
    let values = Array.isArray(el.Value) ? el.Value : [];
    const resolved = resolveVr(tag, vr, ctx);
    if (resolved !== vr) {
      values = valuesFor(tag, resolved, values, ctx);
      vr = resolved;
    }
    const attr: JsonAttribute = { vr };
    if (BINARY_VRS.has(vr)) {
      const bytes = binaryOf(values);
      if (bytes.length) attr.InlineBinary = bytes.toString('base64');
    } else if (vr === 'SQ') {
      if (values.length) attr.Value = values.map((item) => toDicomJson((item ?? {}) as DcmjsDict, ctx));
    } else {
      const converted = values.map((v) => convertValue(vr, v));
      if (converted.some((v) => v !== null)) attr.Value = converted;
    }
    out[tag] = attr;
  }
  return out;
}

function numberOf(el: { Value?: unknown[] } | undefined): number | undefined {
  const v = el?.Value?.[0];
  return typeof v === 'number' ? v : undefined;
}

function binaryOf(values: unknown[]): Buffer {
  const parts = values.map((v) =>
    v instanceof ArrayBuffer ? Buffer.from(v) : ArrayBuffer.isView(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.alloc(0),
  );
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

function convertValue(vr: string, v: unknown): unknown {
  if (v === undefined || v === null || v === '') return null;
  if (vr === 'PN') {
    if (typeof v === 'string') return personName(v);
    const o = v as Record<string, string | undefined>;
    const pn: Record<string, string> = {};
    for (const k of ['Alphabetic', 'Ideographic', 'Phonetic']) if (o[k]) pn[k] = o[k]!;
    return Object.keys(pn).length ? pn : null;
  }
  if (vr === 'AT') return typeof v === 'number' ? v.toString(16).toUpperCase().padStart(8, '0') : String(v).toUpperCase();
  if (NUMERIC_STRING_VRS.has(vr)) {
    const n = typeof v === 'number' ? v : Number(String(v).trim());
    return Number.isFinite(n) ? n : String(v).trim();
  }
  if (typeof v === 'string') return vr === 'UT' || vr === 'LT' || vr === 'ST' ? v.replace(/[\0 ]+$/, '') : v.replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (typeof v === 'bigint') return Number(v);
  return v;
}

/** PN string `A=I=P` (PS3.5 §6.2.1) to its JSON object form. */
export function personName(s: string): Record<string, string> | null {
  const [a, i, p] = s.split('=');
  const pn: Record<string, string> = {};
  if (a) pn.Alphabetic = a;
  if (i) pn.Ideographic = i;
  if (p) pn.Phonetic = p;
  return Object.keys(pn).length ? pn : null;
}

export function firstString(json: DicomJson, tag: string): string | undefined {
  const v = json[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return (v as Record<string, string>).Alphabetic;
  return String(v);
}

export function firstNumber(json: DicomJson, tag: string): number | undefined {
  const v = json[tag]?.Value?.[0];
  const n = typeof v === 'number' ? v : v === undefined || v === null ? NaN : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * DICOM JSON text with attributes in ascending tag order at every level
 * (PS3.18 §F.2.2). JSON.stringify cannot promise that: JavaScript objects put
 * integer-like keys such as "52009229" before all others.
 */
export function dicomJsonText(d: DicomJson): string {
  const parts: string[] = [];
  for (const tag of Object.keys(d).sort()) {
    const a = d[tag];
    if (a.vr === 'SQ' && a.Value) {
      const items = (a.Value as DicomJson[]).map((item) => (item ? dicomJsonText(item) : 'null'));
      parts.push(`"${tag}":{"vr":"SQ","Value":[${items.join(',')}]}`);
    } else parts.push(`"${tag}":${JSON.stringify(a)}`);
  }
  return `{${parts.join(',')}}`;
}
