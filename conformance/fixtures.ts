// Test data for the conformance suite: the real sample files (parsed with a tiny
// Part 10 reader, because dcmjs cannot read all of them) plus synthetic instances
// built with dcmjs with fresh 2.25 UIDs so the suite can run repeatedly.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import dcmjs from 'dcmjs';
import { concat } from './multipart.js';

export interface Instance {
  name: string;
  bytes: Uint8Array;
  ts: string;
  sopClass: string;
  study: string;
  series: string;
  sop: string;
  frames: number;
  /** Frame payloads as stored (native: raw bytes per frame; encapsulated: fragments joined). */
  frameData: Uint8Array[];
  /** Whole pixel data value (native only). */
  pixelData?: Uint8Array;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEF = 0xffffffff;

/** Minimal little-endian Part 10 reader: top-level UIDs, frame count and pixel data. */
export function readPart10(name: string, bytes: Uint8Array): Instance {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const str = (p: number, n: number) => new TextDecoder('latin1').decode(bytes.subarray(p, p + n)).replace(/[\0 ]+$/, '');
  if (str(128, 4) !== 'DICM') throw new Error(`${name}: no DICM prefix`);
  let pos = 132;
  let explicit = true;
  const head = (p: number) => {
    const group = dv.getUint16(p, true),
      elem = dv.getUint16(p + 2, true);
    const tag = group * 0x10000 + elem;
    if (group === 0xfffe) return { tag, vr: '', len: dv.getUint32(p + 4, true), val: p + 8 };
    const vr = str(p + 4, 2);
    if (explicit && /^[A-Z]{2}$/.test(vr)) {
      if (LONG_VRS.has(vr)) return { tag, vr, len: dv.getUint32(p + 8, true), val: p + 12 };
      return { tag, vr, len: dv.getUint16(p + 6, true), val: p + 8 };
    }
    return { tag, vr: '', len: dv.getUint32(p + 4, true), val: p + 8 };
  };
  // Skip an undefined-length sequence or item list; returns position after the delimiter.
  const skipUndefined = (p: number): number => {
    for (;;) {
      const h = head(p);
      if (h.tag === 0xfffee0dd) return h.val;
      if (h.tag !== 0xfffee000) throw new Error(`${name}: bad item at ${p}`);
      if (h.len !== UNDEF) {
        p = h.val + h.len;
        continue;
      }
      p = h.val;
      for (;;) {
        const e = head(p);
        if (e.tag === 0xfffee00d) {
          p = e.val;
          break;
        }
        p = e.len === UNDEF ? skipUndefined(e.val) : e.val + e.len;
      }
    }
  };
  const meta: Record<string, string> = {};
  while (pos < bytes.length && dv.getUint16(pos, true) === 0x0002) {
    const h = head(pos);
    meta[h.tag.toString(16)] = str(h.val, h.len);
    pos = h.val + h.len;
  }
  const ts = meta['20010'] ?? '';
  // Some samples carry an implicit VR body under an explicit TS label: sniff the VR bytes.
  explicit = ts !== '1.2.840.10008.1.2' && /^[A-Z]{2}$/.test(str(pos + 4, 2));
  const out: Instance = { name, bytes, ts, sopClass: '', study: '', series: '', sop: '', frames: 1, frameData: [] };
  let fragments: Uint8Array[] | undefined;
  const bot: number[] = [];
  while (pos + 8 <= bytes.length) {
    const h = head(pos);
    if (h.tag === 0x7fe00010) {
      if (h.len !== UNDEF) {
        out.pixelData = bytes.slice(h.val, h.val + h.len);
        break;
      }
      fragments = [];
      let p = h.val,
        first = true;
      for (;;) {
        const it = head(p);
        if (it.tag === 0xfffee0dd) break;
        const data = bytes.slice(it.val, it.val + it.len);
        if (first) {
          for (let i = 0; i + 4 <= data.length; i += 4) bot.push(dv.getUint32(it.val + i, true));
        } else fragments.push(data);
        first = false;
        p = it.val + it.len;
      }
      break;
    }
    const v = () => str(h.val, h.len);
    if (h.tag === 0x00080016) out.sopClass = v();
    else if (h.tag === 0x00080018) out.sop = v();
    else if (h.tag === 0x0020000d) out.study = v();
    else if (h.tag === 0x0020000e) out.series = v();
    else if (h.tag === 0x00280008) out.frames = parseInt(v(), 10) || 1;
    pos = h.len === UNDEF ? skipUndefined(h.val) : h.val + h.len;
  }
  if (out.pixelData) {
    const size = out.pixelData.length / out.frames;
    for (let i = 0; i < out.frames; i++) out.frameData.push(out.pixelData.slice(i * size, (i + 1) * size));
  } else if (fragments) {
    if (bot.length === out.frames && out.frames > 1) {
      // group fragments by basic offset table (offsets count item headers: 8 bytes each)
      let off = 0,
        cur: Uint8Array[] = [];
      const starts = new Set(bot);
      for (const f of fragments) {
        if (starts.has(off) && cur.length) {
          out.frameData.push(concat(cur));
          cur = [];
        }
        cur.push(f);
        off += f.length + 8;
      }
      out.frameData.push(concat(cur));
    } else if (fragments.length === out.frames) out.frameData = fragments;
    else if (out.frames === 1) out.frameData = [concat(fragments)];
  }
  return out;
}

export const SAMPLE_FILES = [
  'CT_small.dcm',
  'MR_small.dcm',
  'MR_small_implicit.dcm',
  'JPEG-lossy.dcm',
  'JPEG2000.dcm',
  'SC_rgb_jpeg.dcm',
  'SC_rgb_rle_2frame.dcm',
  'chrGerm.dcm',
  'chrJapMulti.dcm',
  'test-SR.dcm',
] as const;
export type SampleName = (typeof SAMPLE_FILES)[number];

export function loadSamples(dir: string): Record<SampleName, Instance> {
  const out = {} as Record<SampleName, Instance>;
  for (const f of SAMPLE_FILES) out[f] = readPart10(f, new Uint8Array(readFileSync(join(dir, f))));
  return out;
}

export function newUid(): string {
  return '2.25.' + BigInt('0x' + randomBytes(15).toString('hex')).toString(10);
}

const { DicomMetaDictionary, DicomDict } = dcmjs.data;

function build(name: string, nat: Record<string, unknown>, pixels: Uint8Array, vr: 'OB' | 'OW'): Instance {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: nat['SOPClassUID'],
    MediaStorageSOPInstanceUID: nat['SOPInstanceUID'],
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.302335364947210617474416346066452963871',
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  const buf = pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.byteLength);
  dict.dict = DicomMetaDictionary.denaturalizeDataset({ ...nat, PixelData: [buf], _vrMap: { PixelData: vr } });
  return readPart10(name, new Uint8Array(dict.write() as ArrayBuffer));
}

/** A Part-10 file (Explicit VR Little Endian) of a data set without pixel data, such as a Key Object Selection Document. */
export function buildPart10(nat: Record<string, unknown>): Uint8Array {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: nat['SOPClassUID'],
    MediaStorageSOPInstanceUID: nat['SOPInstanceUID'],
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.302335364947210617474416346066452963871',
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(nat);
  return new Uint8Array(dict.write() as ArrayBuffer);
}

/** A 4×4 8-bit secondary capture image with fresh UIDs, for a check that changes what it stores. */
export function buildImage(name: string, attrs: Record<string, unknown>): Instance {
  return build(
    name,
    {
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.7',
      SOPInstanceUID: newUid(),
      StudyInstanceUID: newUid(),
      SeriesInstanceUID: newUid(),
      Modality: 'OT',
      SeriesNumber: '1',
      InstanceNumber: '1',
      Rows: 4,
      Columns: 4,
      BitsAllocated: 8,
      BitsStored: 8,
      HighBit: 7,
      PixelRepresentation: 0,
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      ...attrs,
    },
    new Uint8Array(16).fill(7),
    'OB',
  );
}

export interface Synthetic {
  token: string;
  patientId: string;
  patientName: string;
  accession: string;
  studyA: string;
  seriesA1: string;
  seriesA2: string;
  a1: Instance;
  a2: Instance;
  a3: Instance; // a1,a2: MR in seriesA1; a3: CT in seriesA2
  studyB: string;
  b1: Instance; // 3-frame native 8-bit, same patient, other date
  c1: Instance; // another study, used for the study-level STOW mismatch
  d1: Instance; // stored through dicomweb-client
  frameRows: number;
  frameCols: number;
}

export function makeSynthetic(): Synthetic {
  const token = randomBytes(4).toString('hex').toUpperCase();
  const patientId = `CNF${token}`,
    patientName = `Cnfx${token}^Alice`,
    accession = `ACC${token}`;
  const studyA = newUid(),
    seriesA1 = newUid(),
    seriesA2 = newUid(),
    studyB = newUid();
  const common = {
    PatientID: patientId,
    PatientName: patientName,
    PatientBirthDate: '19700101',
    PatientSex: 'F',
    StudyID: 'S1',
    ReferringPhysicianName: '',
    SpecificCharacterSet: 'ISO_IR 100',
  };
  const img16 = (i: number) => {
    const px = new Uint8Array(4 * 4 * 2);
    for (let k = 0; k < px.length; k++) px[k] = (k * 7 + i) & 0xff;
    return px;
  };
  const mono16 = {
    Rows: 4,
    Columns: 4,
    BitsAllocated: 16,
    BitsStored: 12,
    HighBit: 11,
    PixelRepresentation: 0,
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
  };
  const studyAAttrs = {
    ...common,
    StudyInstanceUID: studyA,
    StudyDate: '20010203',
    StudyTime: '101112',
    AccessionNumber: accession,
    StudyDescription: `Conformance study A ${token}`,
  };
  const inst = (name: string, series: string, modality: string, cls: string, n: number, extra: object = {}) =>
    build(
      name,
      {
        ...studyAAttrs,
        SOPClassUID: cls,
        SOPInstanceUID: newUid(),
        SeriesInstanceUID: series,
        Modality: modality,
        SeriesNumber: modality === 'MR' ? '1' : '2',
        InstanceNumber: String(n),
        ...mono16,
        ...extra,
      },
      img16(n),
      'OW',
    );
  const MR = '1.2.840.10008.5.1.4.1.1.4',
    CT = '1.2.840.10008.5.1.4.1.1.2',
    SC = '1.2.840.10008.5.1.4.1.1.7';
  const a1 = inst('synthetic a1 (MR)', seriesA1, 'MR', MR, 1);
  const a2 = inst('synthetic a2 (MR)', seriesA1, 'MR', MR, 2);
  const a3 = inst('synthetic a3 (CT)', seriesA2, 'CT', CT, 3, { RescaleIntercept: '-1024', RescaleSlope: '1', ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'] });
  const frameRows = 16,
    frameCols = 16;
  const px = new Uint8Array(frameRows * frameCols * 3);
  for (let k = 0; k < px.length; k++) px[k] = (Math.floor(k / (frameRows * frameCols)) * 80 + k) & 0xff;
  const b1 = build(
    'synthetic b1 (3-frame)',
    {
      ...common,
      StudyInstanceUID: studyB,
      StudyDate: '20050607',
      StudyTime: '080000',
      AccessionNumber: `ACB${token}`,
      SeriesInstanceUID: newUid(),
      SOPClassUID: SC,
      SOPInstanceUID: newUid(),
      Modality: 'OT',
      SeriesNumber: '1',
      InstanceNumber: '1',
      ConversionType: 'WSD',
      NumberOfFrames: '3',
      Rows: frameRows,
      Columns: frameCols,
      BitsAllocated: 8,
      BitsStored: 8,
      HighBit: 7,
      PixelRepresentation: 0,
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
    },
    px,
    'OB',
  );
  const other = (name: string, pid: string) =>
    build(
      name,
      {
        ...common,
        PatientID: pid,
        PatientName: `Cnfo${token}^Other`,
        StudyInstanceUID: newUid(),
        StudyDate: '20100101',
        StudyTime: '000000',
        AccessionNumber: '',
        SeriesInstanceUID: newUid(),
        SOPClassUID: MR,
        SOPInstanceUID: newUid(),
        Modality: 'MR',
        SeriesNumber: '1',
        InstanceNumber: '1',
        ...mono16,
      },
      img16(9),
      'OW',
    );
  return {
    token,
    patientId,
    patientName,
    accession,
    studyA,
    seriesA1,
    seriesA2,
    a1,
    a2,
    a3,
    studyB,
    b1,
    c1: other('synthetic c1 (other study)', `CNC${token}`),
    d1: other('synthetic d1 (client)', `CND${token}`),
    frameRows,
    frameCols,
  };
}
