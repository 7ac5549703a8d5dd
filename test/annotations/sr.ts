import dcmjs from 'dcmjs';
import { uid } from '../synthetic.js';

const { DicomMetaDictionary, DicomDict } = dcmjs.data;

export const COMPREHENSIVE_3D_SR = '1.2.840.10008.5.1.4.1.1.88.34';
export const SEGMENTATION = '1.2.840.10008.5.1.4.1.1.66.4';
export const GSPS = '1.2.840.10008.5.1.4.1.1.11.1';

export interface MeasuredImage {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid?: string;
}

export interface DerivedOptions {
  sopClassUid?: string;
  studyUid?: string;
  seriesUid?: string;
  sopInstanceUid?: string;
  patientId?: string;
  [attr: string]: unknown;
}

const code = (value: string, scheme: string, meaning: string) => ({ CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning });

/**
 * A measurement report as OHIF writes one when a reader saves a length
 * (Comprehensive 3D SR, TID 1500 Measurement Report with one TID 1410
 * planar ROI measurement group: a POLYLINE of two points on `image` and its
 * length in mm), as Part-10 bytes.
 */
export function measurementReport(
  image: MeasuredImage,
  opts: DerivedOptions = {},
): { bytes: Buffer; studyUid: string; seriesUid: string; sopInstanceUid: string; sopClassUid: string } {
  const { sopClassUid = COMPREHENSIVE_3D_SR, studyUid = image.studyUid, seriesUid = uid(), sopInstanceUid = uid(), patientId = 'SYN-1', ...attrs } = opts;
  const imageClass = image.sopClassUid ?? '1.2.840.10008.5.1.4.1.1.7';
  const dataset = {
    SOPClassUID: sopClassUid,
    SOPInstanceUID: sopInstanceUid,
    StudyInstanceUID: studyUid,
    SeriesInstanceUID: seriesUid,
    PatientName: 'Synthetic^Patient',
    PatientID: patientId,
    Modality: 'SR',
    SeriesNumber: '3000',
    SeriesDescription: 'Research Derived Series',
    InstanceNumber: '1',
    ContentDate: '20261203',
    ContentTime: '120000',
    CompletionFlag: 'COMPLETE',
    VerificationFlag: 'UNVERIFIED',
    ValueType: 'CONTAINER',
    ContinuityOfContent: 'SEPARATE',
    ConceptNameCodeSequence: [code('126000', 'DCM', 'Imaging Measurement Report')],
    ContentTemplateSequence: [{ MappingResource: 'DCMR', TemplateIdentifier: '1500' }],
    CurrentRequestedProcedureEvidenceSequence: [
      {
        StudyInstanceUID: image.studyUid,
        ReferencedSeriesSequence: [
          {
            SeriesInstanceUID: image.seriesUid,
            ReferencedSOPSequence: [{ ReferencedSOPClassUID: imageClass, ReferencedSOPInstanceUID: image.sopInstanceUid }],
          },
        ],
      },
    ],
    ContentSequence: [
      {
        RelationshipType: 'CONTAINS',
        ValueType: 'CONTAINER',
        ConceptNameCodeSequence: [code('126010', 'DCM', 'Imaging Measurements')],
        ContinuityOfContent: 'SEPARATE',
        ContentSequence: [
          {
            RelationshipType: 'CONTAINS',
            ValueType: 'CONTAINER',
            ConceptNameCodeSequence: [code('125007', 'DCM', 'Measurement Group')],
            ContinuityOfContent: 'SEPARATE',
            ContentSequence: [
              {
                RelationshipType: 'HAS OBS CONTEXT',
                ValueType: 'TEXT',
                ConceptNameCodeSequence: [code('112039', 'DCM', 'Tracking Identifier')],
                TextValue: 'Cornerstone3DTools@^0.1.0:Length',
              },
              {
                RelationshipType: 'CONTAINS',
                ValueType: 'NUM',
                ConceptNameCodeSequence: [code('G-D7FE', 'SRT', 'Length')],
                MeasuredValueSequence: [{ MeasurementUnitsCodeSequence: [code('mm', 'UCUM', 'millimeter')], NumericValue: '12.5' }],
                ContentSequence: [
                  {
                    RelationshipType: 'INFERRED FROM',
                    ValueType: 'SCOORD',
                    GraphicType: 'POLYLINE',
                    GraphicData: [1, 1, 3, 3],
                    ContentSequence: [
                      {
                        RelationshipType: 'SELECTED FROM',
                        ValueType: 'IMAGE',
                        ReferencedSOPSequence: [{ ReferencedSOPClassUID: imageClass, ReferencedSOPInstanceUID: image.sopInstanceUid }],
                      },
                    ],
                  },
                ],
              },
            ],
          },
        ],
      },
    ],
    ...attrs,
  };
  return { bytes: part10(sopClassUid, sopInstanceUid, dataset), studyUid, seriesUid, sopInstanceUid, sopClassUid };
}

function part10(sopClassUid: string, sopInstanceUid: string, dataset: Record<string, unknown>): Buffer {
  const meta = {
    FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    MediaStorageSOPClassUID: sopClassUid,
    MediaStorageSOPInstanceUID: sopInstanceUid,
    TransferSyntaxUID: '1.2.840.10008.1.2.1',
    ImplementationClassUID: '2.25.1',
  };
  const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(dict.write());
}
