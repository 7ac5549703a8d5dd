import dcmjs from 'dcmjs';
import { uid } from '../synthetic.js';

const { DicomMetaDictionary, DicomDict } = dcmjs.data;

const KOS = '1.2.840.10008.5.1.4.1.1.88.59';
const SC = '1.2.840.10008.5.1.4.1.1.7';

export interface Ref {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
}

/**
 * A Key Object Selection Document (PS3.3 A.35.4) titled with `code` (PS3.16
 * CID 7010; a rejection note for 113001, 113037, 113038, 113039) that
 * references `refs` in its Current Requested Procedure Evidence Sequence.
 */
export function keyObject(
  studyUid: string,
  refs: readonly Ref[],
  code = '113001',
  scheme = 'DCM',
): { bytes: Buffer; sopInstanceUid: string; seriesUid: string } {
  const sopInstanceUid = uid();
  const seriesUid = uid();
  const byStudy = new Map<string, Map<string, string[]>>();
  for (const r of refs) {
    const series = byStudy.get(r.studyUid) ?? new Map<string, string[]>();
    series.set(r.seriesUid, [...(series.get(r.seriesUid) ?? []), r.sopInstanceUid]);
    byStudy.set(r.studyUid, series);
  }
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: KOS,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.1',
  };
  const dataset = {
    SOPClassUID: KOS,
    SOPInstanceUID: sopInstanceUid,
    StudyInstanceUID: studyUid,
    SeriesInstanceUID: seriesUid,
    PatientName: 'Synthetic^Patient',
    PatientID: 'SYN-1',
    Modality: 'KO',
    SeriesNumber: '99',
    InstanceNumber: '1',
    ValueType: 'CONTAINER',
    ConceptNameCodeSequence: [{ CodeValue: code, CodingSchemeDesignator: scheme, CodeMeaning: 'Rejected for Quality Reasons' }],
    ContinuityOfContent: 'SEPARATE',
    CurrentRequestedProcedureEvidenceSequence: [...byStudy].map(([study, series]) => ({
      StudyInstanceUID: study,
      ReferencedSeriesSequence: [...series].map(([se, sops]) => ({
        SeriesInstanceUID: se,
        ReferencedSOPSequence: sops.map((sop) => ({ ReferencedSOPClassUID: SC, ReferencedSOPInstanceUID: sop })),
      })),
    })),
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return { bytes: Buffer.from(dict.write()), sopInstanceUid, seriesUid };
}
