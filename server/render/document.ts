import type { DicomJson, JsonAttribute } from '../dicom/json.js';

// The non-image objects of WADO-URI (PS3.18 §9; the text and document
// content types of PS3.18 Table 8.7.4-1): a Structured Report shown as
// text/html or text/plain, walked from its content tree (PS3.3 §C.17.3),
// and an encapsulated document (PS3.3 §C.24.2: PDF, CDA, STL …) sent as the
// document it holds.

const T = {
  ValueType: '0040A040',
  ConceptNameCodeSequence: '0040A043',
  ContentSequence: '0040A730',
  RelationshipType: '0040A010',
  TextValue: '0040A160',
  ConceptCodeSequence: '0040A168',
  MeasuredValueSequence: '0040A300',
  NumericValue: '0040A30A',
  MeasurementUnitsCodeSequence: '004008EA',
  Date: '0040A121',
  Time: '0040A122',
  DateTime: '0040A120',
  PersonName: '0040A123',
  UID: '0040A124',
  ReferencedSOPSequence: '00081199',
  ReferencedSOPInstanceUID: '00081155',
  GraphicType: '00700023',
  CodeMeaning: '00080104',
  CodeValue: '00080100',
  MIMETypeOfEncapsulatedDocument: '00420012',
  EncapsulatedDocument: '00420011',
  EncapsulatedDocumentLength: '00420015',
  DocumentTitle: '00420010',
} as const;

/** The text types a Structured Report is shown in, the first the default (PS3.18 Table 8.7.4-1, Text resource category). */
export const REPORT_TYPES = ['text/html', 'text/plain'] as const;
export type ReportType = (typeof REPORT_TYPES)[number];

export type DocumentKind = { kind: 'report' } | { kind: 'encapsulated'; mimeType: string } | { kind: 'other' };

/** What an instance is, for the types it can be shown in: a report (an SR content tree), an encapsulated document, or neither. */
export function documentKind(ds: DicomJson): DocumentKind {
  if (ds[T.MIMETypeOfEncapsulatedDocument] || ds[T.EncapsulatedDocument]) {
    const mime = first(ds[T.MIMETypeOfEncapsulatedDocument])?.trim().toLowerCase();
    return { kind: 'encapsulated', mimeType: mime || 'application/octet-stream' };
  }
  // PS3.3 §C.17.3: the root content item of an SR document is a CONTAINER.
  if (first(ds[T.ValueType]) === 'CONTAINER') return { kind: 'report' };
  return { kind: 'other' };
}

/**
 * The document an encapsulated document instance holds: its value, cut to
 * Encapsulated Document Length (0042,0015) when given, since the value is
 * padded to even length (PS3.3 §C.24.2.1).
 */
export function documentBytes(value: Buffer, ds: DicomJson): Buffer {
  const length = Number(first(ds[T.EncapsulatedDocumentLength]));
  return Number.isInteger(length) && length >= 0 && length <= value.length ? value.subarray(0, length) : value;
}

interface Line {
  depth: number;
  relationship?: string;
  name?: string;
  value?: string;
}

/** The content tree of a report as lines: each content item's concept name and value, nested as the tree is. */
function lines(ds: DicomJson, depth: number, out: Line[], maxItems: number): void {
  if (out.length >= maxItems) return;
  out.push({
    depth,
    relationship: first(ds[T.RelationshipType]),
    name: meaning(ds[T.ConceptNameCodeSequence]),
    value: itemValue(ds),
  });
  for (const child of items(ds[T.ContentSequence])) lines(child, depth + 1, out, maxItems);
}

function itemValue(ds: DicomJson): string | undefined {
  const type = first(ds[T.ValueType]);
  switch (type) {
    case 'TEXT':
      return first(ds[T.TextValue]);
    case 'CODE':
      return meaning(ds[T.ConceptCodeSequence]);
    case 'NUM': {
      const [m] = items(ds[T.MeasuredValueSequence]);
      if (!m) return undefined;
      const unit = items(m[T.MeasurementUnitsCodeSequence])[0];
      const code = unit ? first(unit[T.CodeValue]) : undefined;
      return [first(m[T.NumericValue]), code && code !== '1' ? code : undefined].filter(Boolean).join(' ');
    }
    case 'DATE':
      return first(ds[T.Date]);
    case 'TIME':
      return first(ds[T.Time]);
    case 'DATETIME':
      return first(ds[T.DateTime]);
    case 'PNAME':
      return personName(ds[T.PersonName]);
    case 'UIDREF':
      return first(ds[T.UID]);
    case 'IMAGE':
    case 'COMPOSITE':
    case 'WAVEFORM': {
      const ref = items(ds[T.ReferencedSOPSequence])[0];
      const uid = ref ? first(ref[T.ReferencedSOPInstanceUID]) : undefined;
      return uid ? `${type.toLowerCase()} ${uid}` : undefined;
    }
    case 'SCOORD':
    case 'SCOORD3D':
      return first(ds[T.GraphicType])?.toLowerCase();
    default:
      return undefined;
  }
}

/** At most this many content items are shown, so a hostile tree costs bounded work. */
const MAX_ITEMS = 10_000;

/** A Structured Report as plain text: one content item a line, indented by its depth. */
export function reportText(ds: DicomJson): string {
  const out: Line[] = [];
  lines(ds, 0, out, MAX_ITEMS);
  const title = out.shift();
  const body = out.map((l) => `${'  '.repeat(l.depth - 1)}${l.name ?? ''}${l.name && l.value !== undefined ? ': ' : ''}${l.value ?? ''}`);
  return `${[title?.name ?? 'Report', ...body].join('\n')}\n`;
}

/** A Structured Report as a small HTML page: its title, then the content tree as nested lists, every value escaped. */
export function reportHtml(ds: DicomJson): string {
  const out: Line[] = [];
  lines(ds, 0, out, MAX_ITEMS);
  const title = escapeHtml(out.shift()?.name ?? 'Report');
  const html: string[] = ['<!DOCTYPE html>', '<html><head><meta charset="utf-8">', `<title>${title}</title></head>`, `<body><h1>${title}</h1>`];
  let depth = 0;
  for (const l of out) {
    while (depth < l.depth) {
      html.push('<ul>');
      depth++;
    }
    while (depth > l.depth) {
      html.push('</ul>');
      depth--;
    }
    const name = l.name ? `<b>${escapeHtml(l.name)}</b>` : '';
    const value = l.value !== undefined ? escapeHtml(l.value) : '';
    html.push(`<li>${name}${name && value ? ': ' : ''}${value}</li>`);
  }
  while (depth-- > 0) html.push('</ul>');
  html.push('</body></html>');
  return `${html.join('\n')}\n`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function items(attr: JsonAttribute | undefined): DicomJson[] {
  return (attr?.Value ?? []).filter((v): v is DicomJson => typeof v === 'object' && v !== null && !('Alphabetic' in v));
}

function meaning(attr: JsonAttribute | undefined): string | undefined {
  const [code] = items(attr);
  return code ? first(code[T.CodeMeaning]) : undefined;
}

function personName(attr: JsonAttribute | undefined): string | undefined {
  const v = attr?.Value?.[0] as { Alphabetic?: string } | undefined;
  return v?.Alphabetic;
}

function first(attr: JsonAttribute | undefined): string | undefined {
  const v = attr?.Value?.[0];
  return v === undefined || v === null || typeof v === 'object' ? undefined : String(v);
}
