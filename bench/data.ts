/// <reference path="../server/types/dcmjs.d.ts" />
// Synthetic CT data set generator for the benchmark. Instances are produced lazily,
// one request batch at a time, so the bench never holds the whole data set in memory.
import { randomBytes } from 'node:crypto';
import dcmjs from 'dcmjs';

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
const IMPLEMENTATION_UID = '2.25.295114810240919530152547327343385126761';

/** A fresh 2.25.<decimal of a random 128-bit integer> UID. */
export function uid(): string {
  return '2.25.' + BigInt('0x' + randomBytes(16).toString('hex')).toString(10);
}

// Pool of "random-ish" 12-bit CT values (soft tissue around 1024 plus noise); each
// instance copies a window at a random offset so instances differ without paying
// for a PRNG run over 256k pixels every time.
const POOL_PIXELS = 1 << 21;
const pool = (() => {
  const px = new Uint16Array(POOL_PIXELS);
  let s = 0x2545f491;
  for (let i = 0; i < px.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const noise = (s >>> 0) % 400;
    const ring = Math.abs(((i % 512) - 256) ^ ((i >> 9) % 512)) & 255;
    px[i] = (824 + noise + ring) & 0x0fff;
  }
  return px;
})();

function pixels(rows: number, cols: number): ArrayBuffer {
  const n = rows * cols;
  const off = Math.floor(Math.random() * (POOL_PIXELS - n));
  return pool.slice(off, off + n).buffer as ArrayBuffer;
}

export interface Patient {
  id: string;
  name: string;
  birthDate: string;
  sex: string;
}
export interface SeriesSpec {
  uid: string;
  number: number;
  instances: number;
}
export interface StudySpec {
  uid: string;
  patient: Patient;
  date: string;
  accession: string;
  description: string;
  series: SeriesSpec[];
}
export interface InstanceRef {
  study: string;
  series: string;
  sop: string;
}

/** Surnames of the synthetic patients (the fill's SQL generator names its patients the same way). */
export const LAST = [
  'SMITH',
  'JOHNSON',
  'WILLIAMS',
  'BROWN',
  'JONES',
  'GARCIA',
  'MILLER',
  'DAVIS',
  'RODRIGUEZ',
  'MARTINEZ',
  'HERNANDEZ',
  'LOPEZ',
  'GONZALEZ',
  'WILSON',
  'ANDERSON',
  'THOMAS',
  'TAYLOR',
  'MOORE',
  'JACKSON',
  'MARTIN',
  'LEE',
  'PEREZ',
  'THOMPSON',
  'WHITE',
  'HARRIS',
  'SANCHEZ',
  'CLARK',
  'RAMIREZ',
  'LEWIS',
  'ROBINSON',
  'WALKER',
  'YOUNG',
  'ALLEN',
  'KING',
  'WRIGHT',
  'SCOTT',
  'TORRES',
  'NGUYEN',
  'HILL',
  'FLORES',
];
export const FIRST = [
  'JAMES',
  'MARY',
  'ROBERT',
  'PATRICIA',
  'JOHN',
  'JENNIFER',
  'MICHAEL',
  'LINDA',
  'DAVID',
  'ELIZABETH',
  'WILLIAM',
  'BARBARA',
  'RICHARD',
  'SUSAN',
  'JOSEPH',
  'JESSICA',
];
const DESCRIPTIONS = ['CT CHEST W/O CONTRAST', 'CT ABDOMEN PELVIS W CONTRAST', 'CT HEAD W/O CONTRAST', 'CT ANGIO CHEST', 'CT LUMBAR SPINE'];

/** Run-unique token so PatientIDs / names of separate runs never collide on a shared server. */
export const RUN_TAG = randomBytes(3).toString('hex').toUpperCase();
let patientSeq = 0;

export function newPatient(): Patient {
  const n = patientSeq++;
  const last = LAST[n % LAST.length];
  const first = FIRST[Math.floor(n / LAST.length) % FIRST.length];
  const y = 1930 + (n % 80);
  return {
    id: `BENCH${RUN_TAG}-${String(n).padStart(6, '0')}`,
    name: `${last}${RUN_TAG}^${first}^${String.fromCharCode(65 + (n % 26))}`,
    birthDate: `${y}0${1 + (n % 9)}1${n % 10}`,
    sex: n % 2 ? 'F' : 'M',
  };
}

export function newStudy(patient: Patient, seriesSizes: number[]): StudySpec {
  const d = new Date(Date.UTC(2015, 0, 1) + Math.floor(Math.random() * 3650) * 86400000);
  return {
    uid: uid(),
    patient,
    accession: 'A' + randomBytes(5).toString('hex').toUpperCase(),
    date: d.toISOString().slice(0, 10).replace(/-/g, ''),
    description: DESCRIPTIONS[Math.floor(Math.random() * DESCRIPTIONS.length)],
    series: seriesSizes.map((n, i) => ({ uid: uid(), number: i + 1, instances: n })),
  };
}

/** One Part-10 file (Explicit VR Little Endian) for instance `index` (0-based) of a series. */
export function makeInstance(st: StudySpec, se: SeriesSpec, index: number, rows: number, sop = uid()): Uint8Array {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: CT_IMAGE_STORAGE,
    MediaStorageSOPInstanceUID: sop,
    TransferSyntaxUID: EXPLICIT_VR_LE,
    ImplementationClassUID: IMPLEMENTATION_UID,
    ImplementationVersionName: 'CAIRN_BENCH',
  };
  const z = -index * 1.25;
  const ds = {
    SpecificCharacterSet: 'ISO_IR 100',
    ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'],
    SOPClassUID: CT_IMAGE_STORAGE,
    SOPInstanceUID: sop,
    StudyDate: st.date,
    SeriesDate: st.date,
    ContentDate: st.date,
    StudyTime: '093000',
    SeriesTime: '093100',
    ContentTime: '093200',
    AccessionNumber: st.accession,
    Modality: 'CT',
    Manufacturer: 'CAIRN BENCH',
    InstitutionName: 'SYNTHETIC HOSPITAL',
    ReferringPhysicianName: 'REF^DOCTOR',
    StudyDescription: st.description,
    SeriesDescription: `AXIAL ${se.number}`,
    PatientName: st.patient.name,
    PatientID: st.patient.id,
    PatientBirthDate: st.patient.birthDate,
    PatientSex: st.patient.sex,
    BodyPartExamined: 'CHEST',
    SliceThickness: '1.25',
    KVP: '120',
    StudyInstanceUID: st.uid,
    SeriesInstanceUID: se.uid,
    StudyID: '1',
    SeriesNumber: String(se.number),
    InstanceNumber: String(index + 1),
    ImagePositionPatient: [-250, -250, z],
    ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
    FrameOfReferenceUID: st.uid + '.1',
    SliceLocation: String(z),
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: rows,
    PixelSpacing: [500 / rows, 500 / rows],
    BitsAllocated: 16,
    BitsStored: 12,
    HighBit: 11,
    PixelRepresentation: 0,
    WindowCenter: '40',
    WindowWidth: '400',
    RescaleIntercept: '-1024',
    RescaleSlope: '1',
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(ds);
  // dcmjs writes the meta group and the header; Pixel Data (7FE0,0010) is the last element
  // of the data set, so it is appended as raw Explicit VR LE bytes (OW, 32-bit length).
  // dcmjs copies pixel data byte-wise (~3 ms per 0.5 MB), which would make the client the
  // bottleneck of the STOW phase.
  const header = new Uint8Array(dict.write());
  const px = new Uint8Array(pixels(rows, rows));
  const out = new Uint8Array(header.byteLength + 12 + px.byteLength);
  out.set(header, 0);
  const v = new DataView(out.buffer, header.byteLength, 12);
  v.setUint16(0, 0x7fe0, true);
  v.setUint16(2, 0x0010, true);
  out[header.byteLength + 4] = 0x4f;
  out[header.byteLength + 5] = 0x57; // "OW", 2 reserved bytes = 0
  v.setUint32(8, px.byteLength, true);
  out.set(px, header.byteLength + 12);
  return out;
}

export interface Batch {
  files: Uint8Array[];
  refs: InstanceRef[];
  bytes: number;
}

/**
 * Lazily yields request batches of `perRequest` instances covering the given studies in order.
 * Only one batch exists at a time per consumer. The study source is pulled with next() and
 * never closed, so one endless source can feed several consecutive fills.
 */
export function* batches(studies: Iterable<StudySpec> | Iterator<StudySpec>, perRequest: number, rows: number, limit = Infinity): Generator<Batch> {
  const it = Symbol.iterator in studies ? (studies as Iterable<StudySpec>)[Symbol.iterator]() : studies;
  let files: Uint8Array[] = [];
  let refs: InstanceRef[] = [];
  let bytes = 0;
  let total = 0;
  while (total < limit) {
    const next = it.next();
    if (next.done) break;
    const st = next.value;
    for (const se of st.series) {
      for (let i = 0; i < se.instances && total < limit; i++) {
        const sop = uid();
        const f = makeInstance(st, se, i, rows, sop);
        files.push(f);
        refs.push({ study: st.uid, series: se.uid, sop });
        bytes += f.byteLength;
        total++;
        if (files.length === perRequest) {
          yield { files, refs, bytes };
          files = [];
          refs = [];
          bytes = 0;
        }
      }
    }
  }
  if (files.length) yield { files, refs, bytes };
}
