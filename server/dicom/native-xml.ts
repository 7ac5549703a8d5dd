import { XMLParser } from 'fast-xml-parser';
import type { DicomJson, JsonAttribute } from './json.js';

// The Native DICOM Model (PS3.19 §A.1), the XML form of a data set that
// STOW-RS accepts as application/dicom+xml metadata (PS3.18 §10.5.1.4,
// §F.3), read into the DICOM JSON model (PS3.18 Annex F) that the rest of
// Cairn speaks. Only what the model defines is read: DicomAttribute with
// tag, vr and keyword; Value, PersonName (Alphabetic, Ideographic, Phonetic
// with their five components), Item, BulkData (uri) and InlineBinary.

/** Why an XML metadata part cannot be read; the message names the attribute. */
export class NativeXmlError extends Error {}

const NUMERIC = new Set(['FL', 'FD', 'SL', 'SS', 'UL', 'US', 'IS', 'DS']);
const BIG = new Set(['SV', 'UV']);
const COMPONENTS = ['FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix'] as const;
const GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  // Text stays text: "007" is a Value, not the number 7; spaces inside a value are the sender's.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  // The model has no entities beyond XML's own; a DOCTYPE's entities are never expanded.
  processEntities: true,
  htmlEntities: false,
  isArray: (name) => name === 'DicomAttribute' || name === 'Value' || name === 'PersonName' || name === 'Item',
});

/**
 * The deepest nesting of Item elements in `xml`, read in one pass before
 * parsing, so that a hostile document is refused before any tree is built
 * for it (sequences nested ten thousand deep cost the parser far more than
 * their bytes).
 */
export function itemDepth(xml: string): number {
  let depth = 0;
  let max = 0;
  for (const m of xml.matchAll(/<(\/?)Item\b[^>]*?(\/?)>/g)) {
    if (m[1]) depth--;
    else if (!m[2]) max = Math.max(max, ++depth);
  }
  return max;
}

/** One NativeDicomModel document as a DICOM JSON data set. Throws NativeXmlError. */
export function nativeXmlToJson(xml: string, maxSequenceDepth: number): DicomJson {
  // PS3.19 defines no DTD: a DOCTYPE could only bring entities to expand (and grow without bound).
  if (/<!DOCTYPE/i.test(xml)) throw new NativeXmlError('the metadata has a DOCTYPE, which the Native DICOM Model does not use');
  const depth = itemDepth(xml);
  if (depth > maxSequenceDepth) throw new NativeXmlError(`sequences nest ${depth} deep, more than MAX_SEQUENCE_DEPTH (${maxSequenceDepth}) allows`);
  let doc: Node;
  try {
    doc = parser.parse(xml, true) as Node;
  } catch (err) {
    throw new NativeXmlError(`the metadata is not well-formed XML: ${(err as Error).message}`);
  }
  const root = doc.NativeDicomModel;
  if (root === undefined) throw new NativeXmlError('the metadata has no NativeDicomModel element (PS3.19 §A.1)');
  return dataset(typeof root === 'object' && root !== null ? (root as Node) : {}, '');
}

function dataset(node: Node, where: string): DicomJson {
  const out: DicomJson = {};
  for (const a of (node.DicomAttribute as Node[] | undefined) ?? []) {
    const tag = String(a['@tag'] ?? '').toUpperCase();
    if (!/^[0-9A-F]{8}$/.test(tag)) throw new NativeXmlError(`a DicomAttribute${where} has no valid tag ("${a['@tag'] ?? ''}")`);
    const vr = String(a['@vr'] ?? '');
    if (!/^[A-Z]{2}$/.test(vr)) throw new NativeXmlError(`DicomAttribute ${tag}${where} has no valid vr`);
    out[tag] = attribute(a, tag, vr, `${where} in ${tag}`);
  }
  return out;
}

function attribute(a: Node, tag: string, vr: string, where: string): JsonAttribute {
  const attr: JsonAttribute = { vr };
  if (a.BulkData !== undefined) {
    const uri = (a.BulkData as Node)['@uri'];
    if (typeof uri !== 'string' || !uri) throw new NativeXmlError(`the BulkData of ${tag} has no uri`);
    attr.BulkDataURI = uri;
    return attr;
  }
  if (a.InlineBinary !== undefined) {
    attr.InlineBinary = text(a.InlineBinary).replace(/\s+/g, '');
    return attr;
  }
  if (vr === 'SQ') {
    const items = ordered(a.Item as Node[] | undefined);
    if (items.length) attr.Value = items.map((i, n) => dataset(typeof i === 'object' && i !== null ? i : {}, `${where} item ${n + 1}`));
    return attr;
  }
  if (vr === 'PN') {
    const names = ordered(a.PersonName as Node[] | undefined);
    if (names.length) attr.Value = names.map((p) => personName(typeof p === 'object' && p !== null ? p : {}));
    return attr;
  }
  const values = ordered(a.Value as unknown[] | undefined);
  if (values.length) attr.Value = values.map((v) => value(vr, text(v), tag));
  return attr;
}

/** Elements in the order of their number attribute (PS3.19 §A.1.1: Value, Item and PersonName are numbered from 1). */
function ordered<T>(list: T[] | undefined): T[] {
  if (!list) return [];
  const num = (x: T) => Number(typeof x === 'object' && x !== null ? (x as Node)['@number'] : Number.NaN);
  return list.every((x) => Number.isInteger(num(x))) ? [...list].sort((p, q) => num(p) - num(q)) : list;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return text((v as Node)['#text']);
  return String(v);
}

function value(vr: string, s: string, tag: string): string | number | null {
  if (s === '') return null;
  if (NUMERIC.has(vr)) {
    const n = Number(s.trim());
    if (!Number.isFinite(n)) throw new NativeXmlError(`the ${vr} value "${s}" of ${tag} is not a number`);
    return n;
  }
  if (BIG.has(vr)) {
    const n = Number(s.trim());
    return Number.isSafeInteger(n) ? n : s.trim();
  }
  return s;
}

/** PS3.19 §A.1.1: each of the three groups holds the five components, joined with ^ as PS3.5 §6.2.1 writes them. */
function personName(p: Node): Record<string, string> {
  const out: Record<string, string> = {};
  for (const g of GROUPS) {
    const group = p[g];
    if (group === undefined) continue;
    const parts = COMPONENTS.map((c) => text(typeof group === 'object' && group !== null ? (group as Node)[c] : undefined));
    while (parts.length && parts[parts.length - 1] === '') parts.pop();
    out[g] = parts.join('^');
  }
  return out;
}
