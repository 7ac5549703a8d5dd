import { randomBytes } from 'node:crypto';
import dcmjs from 'dcmjs';

const { DicomMetaDictionary, DicomDict } = dcmjs.data;

export function uid(): string {
  // 2.25.<128-bit decimal> (PS3.5 §B.2), trimmed to stay within 64 characters.
  return `2.25.${BigInt(`0x${randomBytes(15).toString('hex')}`).toString()}`;
}

export interface SyntheticOptions {
  studyUid?: string;
  seriesUid?: string;
  sopInstanceUid?: string;
  frames?: number;
  rows?: number;
  columns?: number;
  [attr: string]: unknown;
}

/** A native 8-bit Secondary Capture Part-10 file, frame i filled with value i+1 (so frames are recognisable). */
export function syntheticInstance(opts: SyntheticOptions = {}): {
  bytes: Buffer;
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  frameBytes: Buffer[];
} {
  const { studyUid = uid(), seriesUid = uid(), sopInstanceUid = uid(), frames = 1, rows = 4, columns = 4, ...attrs } = opts;
  // Samples stored per pixel: 1 unless the attributes say colour (YBR_FULL_422 keeps 2, PS3.3 §C.7.6.3.1.2).
  const samples = attrs.SamplesPerPixel === 3 ? (String(attrs.PhotometricInterpretation).endsWith('_422') ? 2 : 3) : 1;
  const frameBytes = Array.from({ length: frames }, (_, i) => Buffer.alloc(rows * columns * samples, i + 1));
  const pixels = Buffer.concat(frameBytes);
  const sopClassUid = '1.2.840.10008.5.1.4.1.1.7';
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.1',
  };
  const dataset = {
    SOPClassUID: sopClassUid,
    SOPInstanceUID: sopInstanceUid,
    StudyInstanceUID: studyUid,
    SeriesInstanceUID: seriesUid,
    PatientName: 'Synthetic^Patient',
    PatientID: 'SYN-1',
    Modality: 'OT',
    SeriesNumber: '1',
    InstanceNumber: '1',
    SamplesPerPixel: 1,
    PhotometricInterpretation: 'MONOCHROME2',
    Rows: rows,
    Columns: columns,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    NumberOfFrames: String(frames),
    ...attrs,
    _vrMap: { PixelData: 'OB' },
    PixelData: pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.length),
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return { bytes: Buffer.from(dict.write()), studyUid, seriesUid, sopInstanceUid, frameBytes };
}
