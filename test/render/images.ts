import dcmjs from 'dcmjs';
import { uid } from '../synthetic.js';

const { DicomMetaDictionary, DicomDict } = dcmjs.data;

export interface ImageOptions {
  rows: number;
  columns: number;
  /** Stored values, row by row, frame after frame (samples interleaved for colour). */
  values: number[];
  bitsAllocated?: 8 | 16;
  signed?: boolean;
  photometric?: string;
  samplesPerPixel?: number;
  frames?: number;
  studyUid?: string;
  seriesUid?: string;
  instanceNumber?: number;
  transferSyntaxUid?: string;
  /** Further attributes, by dcmjs keyword. */
  attrs?: Record<string, unknown>;
}

/** A native image Part-10 file with the given stored values. */
export function imageInstance(o: ImageOptions): { bytes: Buffer; studyUid: string; seriesUid: string; sopInstanceUid: string } {
  const bits = o.bitsAllocated ?? 16;
  const pixels = Buffer.alloc(o.values.length * (bits / 8));
  o.values.forEach((v, i) => {
    if (bits === 8) pixels.writeUInt8(v & 0xff, i);
    else pixels.writeUInt16LE(v & 0xffff, i * 2);
  });
  const studyUid = o.studyUid ?? uid();
  const seriesUid = o.seriesUid ?? uid();
  const sopInstanceUid = uid();
  const sopClassUid = '1.2.840.10008.5.1.4.1.1.7';
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: o.transferSyntaxUid ?? '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.1',
  };
  const spp = o.samplesPerPixel ?? 1;
  const dataset = {
    SOPClassUID: sopClassUid,
    SOPInstanceUID: sopInstanceUid,
    StudyInstanceUID: studyUid,
    SeriesInstanceUID: seriesUid,
    PatientName: 'Render^Test',
    PatientID: 'R-1',
    Modality: 'OT',
    SeriesNumber: '1',
    InstanceNumber: String(o.instanceNumber ?? 1),
    SamplesPerPixel: spp,
    PhotometricInterpretation: o.photometric ?? 'MONOCHROME2',
    ...(spp > 1 ? { PlanarConfiguration: 0 } : {}),
    Rows: o.rows,
    Columns: o.columns,
    BitsAllocated: bits,
    BitsStored: bits,
    HighBit: bits - 1,
    PixelRepresentation: o.signed ? 1 : 0,
    NumberOfFrames: String(o.frames ?? 1),
    ...o.attrs,
    _vrMap: { PixelData: bits === 8 ? 'OB' : 'OW' },
    PixelData: pixels.buffer.slice(pixels.byteOffset, pixels.byteOffset + pixels.length),
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return { bytes: Buffer.from(dict.write()), studyUid, seriesUid, sopInstanceUid };
}
