import { dicomJsonText, firstNumber, firstString, type DicomJson } from '../dicom/json.js';
import { ATTRIBUTES, type IndexColumn, type IndexValues, type Level } from '../dicom/attributes.js';
import { pick, SERIES_LEVEL, STUDY_LEVEL } from '../dicom/levels.js';
import type { ParsedInstance } from '../dicom/parse.js';
import { Tag } from '../dicom/tags.js';
import type { InstanceRow, SeriesRow, StudyRow } from './rows.js';

/** The path of an instance below the DICOMweb root (PS3.18 §10.4.1). */
export function instancePath(studyUid: string, seriesUid: string, sopInstanceUid: string): string {
  return `studies/${studyUid}/series/${seriesUid}/instances/${sopInstanceUid}`;
}

/**
 * Index columns that are not a plain copy of one attribute's value: the UIDs
 * as parse() checked them, and Number of Frames with its default.
 */
type Special = 'study_uid' | 'series_uid' | 'sop_instance_uid' | 'sop_class_uid' | 'number_of_frames';
const SPECIAL: ReadonlySet<string> = new Set<Special>(['study_uid', 'series_uid', 'sop_instance_uid', 'sop_class_uid', 'number_of_frames']);

/** The plain copies of each level: column, tag, and how the value is read (by its VR). */
type Copy = { column: string; tag: string; read: (d: DicomJson, tag: string) => string | number | null };
const COPIES: Record<Level, Copy[]> = { study: copies('study'), series: copies('series'), instance: copies('instance') };

function copies(level: Level): Copy[] {
  return ATTRIBUTES.flatMap((e) =>
    e.level !== level || e.column === null || SPECIAL.has(e.column)
      ? []
      : [{ column: e.column, tag: e.tag, read: e.vr === 'PN' ? pnText : e.vr === 'IS' || e.vr === 'US' ? integer : text }],
  );
}

/**
 * A level's row: the columns given, with the plain copies filled in. R must
 * have each copied column with the type IndexValues gives it, and `row` every
 * other column. (Filling the literal in place, rather than spreading an object
 * of copies into it, keeps this at a fraction of a microsecond.)
 */
function withCopies<L extends Level, R extends Omit<IndexValues<L>, Special>>(d: DicomJson, level: L, row: Omit<R, Exclude<IndexColumn<L>, Special>>): R {
  const out: Record<string, unknown> = row;
  for (const c of COPIES[level]) out[c.column] = c.read(d, c.tag);
  return out as R;
}

function text(d: DicomJson, tag: string): string | null {
  return firstString(d, tag) ?? null;
}

function integer(d: DicomJson, tag: string): number | null {
  const n = firstNumber(d, tag);
  return n === undefined ? null : Math.trunc(n);
}

/**
 * Index rows for one parsed instance. The stored metadata is the data set as
 * DICOM JSON text with a BulkDataURI (relative to the DICOMweb root; the
 * server prefixes its base URL when serving) for each bulk data element.
 */
export function buildRows(
  p: ParsedInstance,
  blob: { blobKey: string; size: number; sha256: string },
  labels: { study: string[]; series: string[] } = { study: [], series: [] },
): { study: StudyRow; series: SeriesRow; instance: InstanceRow } {
  const d = p.dataset;
  const studyAttributes = pick(d, STUDY_LEVEL);
  const seriesAttributes = pick(d, SERIES_LEVEL);
  const study = withCopies<'study', StudyRow>(d, 'study', {
    study_uid: p.studyUid,
    attributes: studyAttributes,
    attributes_text: attributesText(studyAttributes),
    labels: labels.study,
  });
  const series = withCopies<'series', SeriesRow>(d, 'series', {
    series_uid: p.seriesUid,
    study_uid: p.studyUid,
    attributes: seriesAttributes,
    attributes_text: attributesText(seriesAttributes),
    labels: labels.series,
  });
  const base = instancePath(p.studyUid, p.seriesUid, p.sopInstanceUid);
  const meta: DicomJson = { ...d };
  for (const [tag, b] of Object.entries(p.bulk)) meta[tag] = { vr: b.vr, BulkDataURI: `${base}/bulkdata/${tag}` };
  const instance = withCopies<'instance', InstanceRow>(d, 'instance', {
    sop_instance_uid: p.sopInstanceUid,
    series_uid: p.seriesUid,
    study_uid: p.studyUid,
    sop_class_uid: p.sopClassUid,
    transfer_syntax_uid: p.transferSyntaxUid,
    blob_key: blob.blobKey,
    size: blob.size,
    sha256: blob.sha256,
    // The stored Number of Frames (0028,0008); a single-frame image without it has one.
    number_of_frames: integer(d, Tag.NumberOfFrames) ?? (p.frames ? p.frames.length : null),
    bulk: p.bulk,
    frames: p.frames,
    metadata: dicomJsonText(meta),
  });
  return { study, series, instance };
}

/**
 * The attributes as the text QIDO splices into its results: JSON.stringify of
 * the value with object keys in the order jsonb keeps them (shorter keys
 * first, then bytewise). That is the text QIDO produced when it parsed the
 * jsonb column and re-serialised it, and what the 20261201020000 migration
 * backfilled, so results do not depend on when a study was stored (a PN
 * value's groups, for one, come out Phonetic, Alphabetic, Ideographic).
 */
export function attributesText(attributes: DicomJson): string {
  return JSON.stringify(jsonbOrder(attributes));
}

function jsonbOrder(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(jsonbOrder);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort(jsonbKeyOrder)) if (o[k] !== undefined) out[k] = jsonbOrder(o[k]);
  return out;
}

function jsonbKeyOrder(a: string, b: string): number {
  const la = Buffer.byteLength(a);
  const lb = Buffer.byteLength(b);
  return la !== lb ? la - lb : Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * The top-level attributes of stored DICOM JSON text (attributes_text, or an
 * instance's metadata) as a flat list `[tag, text, tag, text, …]`, found
 * without parsing. Both are JSON.stringify output, `{"GGGGEEEE":{"vr":…},…}`. Only an SQ value
 * nests objects with tag keys, so any other value ends at the first `},"`
 * followed by a hex digit: that quote cannot close a string (a closing quote
 * is followed by `,` `]` `}` or `:`), so it opens the next key. SQ values are
 * scanned bracket by bracket. Text of any other shape is parsed instead.
 */
export function storedAttributes(json: string): string[] {
  const out: string[] = [];
  const end = json.length - 1;
  let i = 1;
  while (i < end) {
    const start = i + 11;
    if (json.charCodeAt(i) !== 34 || json.charCodeAt(i + 9) !== 34 || json.charCodeAt(i + 10) !== 58 || !json.startsWith('{"vr":"', start))
      return parsedAttributes(json);
    const stop = json.startsWith('SQ"', start + 7) ? closeOf(json, start) : valueEnd(json, start, end);
    if (stop < 0 || (stop !== end && json.charCodeAt(stop) !== 44)) return parsedAttributes(json);
    out.push(json.slice(i + 1, i + 9), json.slice(start, stop));
    i = stop + 1;
  }
  return out;
}

/** The end (exclusive) of a non-SQ attribute value starting at `from`. */
function valueEnd(json: string, from: number, end: number): number {
  for (let p = json.indexOf('},"', from); p >= 0; p = json.indexOf('},"', p + 1)) {
    const c = json.charCodeAt(p + 3);
    if ((c >= 48 && c <= 57) || (c >= 65 && c <= 70)) return p + 1;
  }
  return end;
}

/** The end (exclusive) of the object or array opening at `from`, skipping strings; -1 if it never closes. */
function closeOf(json: string, from: number): number {
  let depth = 0;
  for (let p = from; p < json.length; p++) {
    const c = json.charCodeAt(p);
    if (c === 34) {
      // Skip the string: its end is the next quote not escaped by an odd run of backslashes.
      for (;;) {
        p = json.indexOf('"', p + 1);
        if (p < 0) return -1;
        let b = p - 1;
        while (json.charCodeAt(b) === 92) b--;
        if ((p - 1 - b) % 2 === 0) break;
      }
    } else if (c === 123 || c === 91) depth++;
    else if ((c === 125 || c === 93) && --depth === 0) return p + 1;
  }
  return -1;
}

function parsedAttributes(json: string): string[] {
  return Object.entries(JSON.parse(json) as DicomJson).flatMap(([tag, attr]) => [tag, JSON.stringify(attr)]);
}

/** All component groups of a PN value, `Alphabetic=Ideographic=Phonetic`, for matching. */
function pnText(d: DicomJson, tag: string): string | null {
  const v = d[tag]?.Value?.[0] as Record<string, string> | null | undefined;
  if (!v) return null;
  const groups = [v.Alphabetic ?? '', v.Ideographic ?? '', v.Phonetic ?? ''];
  while (groups.length && !groups[groups.length - 1]) groups.pop();
  return groups.join('=');
}
