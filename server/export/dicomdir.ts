import { randomUUID } from 'node:crypto';
import type { DicomJson } from '../dicom/json.js';

// The DICOMDIR of an exported file-set (PS3.10 §8, PS3.3 Annex F): a Part-10
// file of the Basic Directory IOD (SOP Class 1.2.840.10008.1.3.10) whose
// Directory Record Sequence holds one PATIENT, STUDY, SERIES and IMAGE record
// per entity, depth first, each linked to the next record of its level and
// to the first of the level below by byte offsets from the start of the file
// (PS3.3 F.3.2.2). Written here byte by byte in Explicit VR Little Endian,
// the only syntax a DICOMDIR may use (PS3.10 §8.6), because those offsets
// need the exact position of every record, which a generic writer does not
// give.

/** PS3.4 Annex B.5: Media Storage Directory Storage. */
const DIRECTORY_SOP_CLASS = '1.2.840.10008.1.3.10';
const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
/** The Implementation Class UID of the files Cairn writes (PS3.7 Annex D.3.3.2), as server/dicom/part10-writer.ts writes it. */
const IMPLEMENTATION_CLASS_UID = '2.25.209127458245738958542016946716937312829';
const IMPLEMENTATION_VERSION = 'CAIRN_EXPORT';

/** One file of the file-set: its File ID and its attributes as exported (de-identified when the files are). */
export interface DirectoryFile {
  /** PS3.10 §8.2: the path components, each 1–8 of A–Z, 0–9 and "_". */
  fileId: string[];
  attrs: DicomJson;
  transferSyntaxUid: string;
  /** What puts this file's patient apart from others (values that never leave: only compared). */
  patientKey: string;
}

/** PS3.10 §8.2: a component of a File ID. */
export const FILE_ID_COMPONENT = /^[A-Z0-9_]{1,8}$/;

type Element = [tag: number, vr: string, value: Buffer];

interface DirRecord {
  type: 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';
  keys: Element[];
  children: DirRecord[];
}

/**
 * The DICOMDIR for `files`, grouped by patient, study (0020,000D) and series
 * (0020,000E), in the order given. Type 1 keys a file lacks (a de-identified
 * Patient ID, say) are made up: a number in the file-set (PS3.3 F.5 requires
 * them; the files themselves are unchanged); Type 2 keys are sent empty.
 */
export function writeDicomdir(files: readonly DirectoryFile[], fileSetId = 'CAIRN_EXPORT'): Buffer {
  for (const f of files)
    if (!f.fileId.length || f.fileId.length > 8 || !f.fileId.every((c) => FILE_ID_COMPONENT.test(c)))
      throw new Error(`not a File ID of PS3.10 §8.2: ${f.fileId.join('/')}`);
  const roots = tree(files);
  const meta = fileMeta(`2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`)}`);
  // PS3.3 F.3.2.1: File-set ID, offsets of the first and last root records, consistency flag, then the records.
  const head = (first: number, last: number) =>
    Buffer.concat([
      element(0x00041130, 'CS', text(fileSetId)),
      element(0x00041200, 'UL', ul(first)),
      element(0x00041202, 'UL', ul(last)),
      element(0x00041212, 'US', us(0)),
      sequenceStart(0x00041220),
    ]);
  const firstRecordAt = 132 + meta.length + head(0, 0).length;
  const order: DirRecord[] = [];
  const walk = (rs: DirRecord[]) => {
    for (const r of rs) {
      order.push(r);
      walk(r.children);
    }
  };
  walk(roots);
  // Every record's size is independent of the offsets it holds (UL, 4 bytes), so positions come first.
  const at = new Map<DirRecord, number>();
  let pos = firstRecordAt;
  for (const r of order) {
    at.set(r, pos);
    pos += item(r, 0, 0).length;
  }
  const nextOf = new Map<DirRecord, number>();
  const link = (rs: DirRecord[]) => {
    rs.forEach((r, i) => {
      nextOf.set(r, i + 1 < rs.length ? at.get(rs[i + 1])! : 0);
      link(r.children);
    });
  };
  link(roots);
  const records = order.map((r) => item(r, nextOf.get(r)!, r.children.length ? at.get(r.children[0])! : 0));
  const firstRoot = roots.length ? at.get(roots[0])! : 0;
  const lastRoot = roots.length ? at.get(roots[roots.length - 1])! : 0;
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), meta, head(firstRoot, lastRoot), ...records, sequenceEnd()]);
}

function tree(files: readonly DirectoryFile[]): DirRecord[] {
  const patients = new Map<string, DirRecord>();
  const studies = new Map<string, DirRecord>();
  const series = new Map<string, DirRecord>();
  for (const f of files) {
    const a = f.attrs;
    let p = patients.get(f.patientKey);
    if (!p) {
      p = record('PATIENT', [
        [0x00100010, 'PN', text(pn(a['00100010']))],
        [0x00100020, 'LO', text(str(a, '00100020') || `P${patients.size + 1}`)],
      ]);
      patients.set(f.patientKey, p);
    }
    const studyUid = str(a, '0020000D');
    let st = studies.get(studyUid);
    if (!st) {
      st = record('STUDY', [
        [0x00080020, 'DA', text(str(a, '00080020'))],
        [0x00080030, 'TM', text(str(a, '00080030'))],
        [0x00080050, 'SH', text(str(a, '00080050'))],
        [0x00081030, 'LO', text(str(a, '00081030'))],
        [0x0020000d, 'UI', uid(studyUid)],
        [0x00200010, 'SH', text(str(a, '00200010') || String(studies.size + 1))],
      ]);
      studies.set(studyUid, st);
      p.children.push(st);
    }
    const seriesUid = str(a, '0020000E');
    let se = series.get(seriesUid);
    if (!se) {
      se = record('SERIES', [
        [0x00080060, 'CS', text(str(a, '00080060') || 'OT')],
        [0x0020000e, 'UI', uid(seriesUid)],
        [0x00200011, 'IS', text(str(a, '00200011') || String(st.children.length + 1))],
      ]);
      series.set(seriesUid, se);
      st.children.push(se);
    }
    se.children.push(
      record('IMAGE', [
        [0x00041500, 'CS', text(f.fileId.join('\\'))],
        [0x00041510, 'UI', uid(str(a, '00080016'))],
        [0x00041511, 'UI', uid(str(a, '00080018'))],
        [0x00041512, 'UI', uid(f.transferSyntaxUid)],
        [0x00200013, 'IS', text(str(a, '00200013') || String(se.children.length + 1))],
      ]),
    );
  }
  return [...patients.values()];
}

function record(type: DirRecord['type'], keys: Element[]): DirRecord {
  return { type, keys, children: [] };
}

/** One Directory Record (PS3.3 F.3.2.2) as an item of explicit length, its keys in tag order. */
function item(r: DirRecord, next: number, lower: number): Buffer {
  const keys: Element[] = [
    [0x00041400, 'UL', ul(next)],
    // Record In-use Flag: FFFFH, in use.
    [0x00041410, 'US', us(0xffff)],
    [0x00041420, 'UL', ul(lower)],
    [0x00041430, 'CS', text(r.type)],
    ...r.keys,
  ];
  // PS3.3 F.5: Specific Character Set (Type 1C) when a key holds more than ASCII; the values are UTF-8.
  if (r.keys.some(([, , v]) => v.some((b) => b > 0x7f))) keys.push([0x00080005, 'CS', text('ISO_IR 192')]);
  keys.sort((x, y) => x[0] - y[0]);
  const body = Buffer.concat(keys.map(([tag, vr, value]) => element(tag, vr, value)));
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0xfffe, 0);
  head.writeUInt16LE(0xe000, 2);
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

function fileMeta(instanceUid: string): Buffer {
  const elements = Buffer.concat([
    element(0x00020001, 'OB', Buffer.from([0, 1])),
    element(0x00020002, 'UI', uid(DIRECTORY_SOP_CLASS)),
    element(0x00020003, 'UI', uid(instanceUid)),
    element(0x00020010, 'UI', uid(EXPLICIT_VR_LE)),
    element(0x00020012, 'UI', uid(IMPLEMENTATION_CLASS_UID)),
    element(0x00020013, 'SH', text(IMPLEMENTATION_VERSION)),
  ]);
  return Buffer.concat([element(0x00020000, 'UL', ul(elements.length)), elements]);
}

// PS3.5 §7.1.2: these VRs have a 4-byte length after 2 reserved bytes.
const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT', 'UC', 'UR']);

function element(tag: number, vr: string, value: Buffer): Buffer {
  const long = LONG.has(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(tag >>> 16, 0);
  head.writeUInt16LE(tag & 0xffff, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

/** An SQ of undefined length (PS3.5 §7.5.1), closed by sequenceEnd(). */
function sequenceStart(tag: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  b.write('SQ', 4, 'latin1');
  b.writeUInt32LE(0xffffffff, 8);
  return b;
}

function sequenceEnd(): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(0xe0dd, 2);
  return b;
}

/** PS3.5 §6.2: text padded to an even length with a space. */
function text(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return b.length % 2 ? Buffer.concat([b, Buffer.from(' ')]) : b;
}

/** PS3.5 §9.1: a UID padded with a NUL. */
function uid(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return b.length % 2 ? Buffer.concat([b, Buffer.alloc(1)]) : b;
}

function ul(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

function us(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n, 0);
  return b;
}

function str(a: DicomJson, tag: string): string {
  const v = a[tag]?.Value?.[0];
  return v === undefined || v === null ? '' : String(v);
}

/** PS3.18 §F.2.2: a Person Name's component groups, joined by "=" as PS3.5 §6.2 writes them. */
function pn(attr: DicomJson[string] | undefined): string {
  const v = attr?.Value?.[0] as { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | undefined;
  if (!v || typeof v !== 'object') return '';
  return [v.Alphabetic ?? '', v.Ideographic ?? '', v.Phonetic ?? ''].join('=').replace(/=+$/, '');
}
