import type { DicomJson } from './json.js';
import { isValidUid } from './uid.js';

// IHE IOCM rejection notes: a Key Object Selection Document (PS3.3 A.35.4)
// whose Document Title (Concept Name Code Sequence) is one of the rejection
// titles of PS3.16 CID 7010 Key Object Selection Document Title.

/** Key Object Selection Document Storage (PS3.4 Annex B). */
export const KOS_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.88.59';

/** The rejection titles of CID 7010, scheme DCM (PS3.16 Annex D). */
export const REJECTION_TITLES: Readonly<Record<string, string>> = {
  '113001': 'Rejected for Quality Reasons',
  '113037': 'Rejected for Patient Safety Reasons',
  '113038': 'Incorrect Modality Worklist Entry',
  '113039': 'Data Retention Policy Expired',
};

const T = {
  ConceptNameCodeSequence: '0040A043',
  CodeValue: '00080100',
  CodingSchemeDesignator: '00080102',
  CodeMeaning: '00080104',
  CurrentRequestedProcedureEvidenceSequence: '0040A375',
  StudyInstanceUID: '0020000D',
  ReferencedSeriesSequence: '00081115',
  SeriesInstanceUID: '0020000E',
  ReferencedSOPSequence: '00081199',
  ReferencedSOPInstanceUID: '00081155',
} as const;

export interface RejectedRef {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
}

export interface RejectionNote {
  code: { value: string; scheme: 'DCM'; meaning: string };
  /** The instances the note rejects (Current Requested Procedure Evidence Sequence, PS3.3 C.17.2). */
  refs: RejectedRef[];
}

/** The rejection a data set makes, or undefined when it is not a rejection note. */
export function rejectionNote(sopClassUid: string, dataset: DicomJson): RejectionNote | undefined {
  if (sopClassUid !== KOS_SOP_CLASS) return undefined;
  const [title] = items(dataset, T.ConceptNameCodeSequence);
  if (!title || text(title, T.CodingSchemeDesignator) !== 'DCM') return undefined;
  const value = text(title, T.CodeValue);
  if (!value || !(value in REJECTION_TITLES)) return undefined;
  const refs: RejectedRef[] = [];
  for (const study of items(dataset, T.CurrentRequestedProcedureEvidenceSequence)) {
    const studyUid = text(study, T.StudyInstanceUID);
    for (const series of items(study, T.ReferencedSeriesSequence)) {
      const seriesUid = text(series, T.SeriesInstanceUID);
      for (const sop of items(series, T.ReferencedSOPSequence)) {
        const sopInstanceUid = text(sop, T.ReferencedSOPInstanceUID);
        if ([studyUid, seriesUid, sopInstanceUid].every((u) => u !== undefined && isValidUid(u)))
          refs.push({ studyUid: studyUid as string, seriesUid: seriesUid as string, sopInstanceUid: sopInstanceUid as string });
      }
    }
  }
  return { code: { value, scheme: 'DCM', meaning: REJECTION_TITLES[value] }, refs };
}

function items(ds: DicomJson, tag: string): DicomJson[] {
  const v = ds[tag]?.Value;
  return Array.isArray(v) ? (v.filter((i) => i !== null && typeof i === 'object') as DicomJson[]) : [];
}

function text(ds: DicomJson, tag: string): string | undefined {
  const v = ds[tag]?.Value?.[0];
  return typeof v === 'string' ? v.trim() : undefined;
}
