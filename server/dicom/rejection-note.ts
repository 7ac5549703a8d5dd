import { randomUUID } from 'node:crypto';
import type { DicomJson } from './json.js';
import { writePart10 } from './part10-writer.js';
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

/** An instance a built rejection note lists, with its SOP Class (Referenced SOP Class UID, PS3.3 C.17.2.1). */
export interface NoteRef extends RejectedRef {
  sopClassUid: string;
}

/** A fresh UID under the UUID root (PS3.5 §B.2). */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

// The Patient and General Study modules' attributes a note copies from an
// instance of the study it is stored in, so it files under the same patient
// and study (PS3.3 A.35.4 Key Object Selection Document IOD).
const COPIED = [
  '00080020', // Study Date
  '00080030', // Study Time
  '00080050', // Accession Number
  '00080090', // Referring Physician's Name
  '00081030', // Study Description
  '00100010', // Patient's Name
  '00100020', // Patient ID
  '00100021', // Issuer of Patient ID
  '00100030', // Patient's Birth Date
  '00100040', // Patient's Sex
  '00200010', // Study ID
  '00080005', // Specific Character Set
];

/**
 * A rejection note (IHE IOCM) as Cairn writes it for the reject shortcut: a
 * Key Object Selection Document in `studyUid`, in a new series, titled with
 * `code` (CID 7010) and listing `refs` in its Current Requested Procedure
 * Evidence Sequence, which is what rejectionNote() reads back when it is stored.
 */
export function buildRejectionNote(
  studyUid: string,
  code: string,
  refs: readonly NoteRef[],
  study: DicomJson,
  now = new Date(),
): { bytes: Buffer; sopInstanceUid: string; seriesUid: string } {
  const meaning = REJECTION_TITLES[code];
  if (!meaning) throw new Error(`not a rejection title of CID 7010: ${code}`);
  const sopInstanceUid = newUid();
  const seriesUid = newUid();
  const date = now.toISOString().slice(0, 10).replace(/-/g, '');
  const time = now.toISOString().slice(11, 19).replace(/:/g, '');
  const ui = (v: string) => ({ vr: 'UI', Value: [v] });
  const cs = (vr: string, v: string) => ({ vr, Value: [v] });
  const bySeries = new Map<string, Map<string, NoteRef[]>>();
  for (const r of refs) {
    const series = bySeries.get(r.studyUid) ?? new Map<string, NoteRef[]>();
    series.set(r.seriesUid, [...(series.get(r.seriesUid) ?? []), r]);
    bySeries.set(r.studyUid, series);
  }
  const copied: DicomJson = {};
  for (const tag of COPIED) if (study[tag]) copied[tag] = study[tag];
  const dataset: DicomJson = {
    ...copied,
    '00080016': ui(KOS_SOP_CLASS),
    '00080018': ui(sopInstanceUid),
    '00080023': cs('DA', date),
    '00080033': cs('TM', time),
    '00080060': cs('CS', 'KO'),
    '0020000D': ui(studyUid),
    '0020000E': ui(seriesUid),
    '00200011': { vr: 'IS', Value: [999] },
    '00200013': { vr: 'IS', Value: [1] },
    '0040A040': cs('CS', 'CONTAINER'),
    '0040A043': {
      vr: 'SQ',
      Value: [{ '00080100': cs('SH', code), '00080102': cs('SH', 'DCM'), '00080104': cs('LO', meaning) }],
    },
    '0040A050': cs('CS', 'SEPARATE'),
    '0040A375': {
      vr: 'SQ',
      Value: [...bySeries].map(([study, series]) => ({
        '0020000D': ui(study),
        '00081115': {
          vr: 'SQ',
          Value: [...series].map(([se, sops]) => ({
            '0020000E': ui(se),
            '00081199': {
              vr: 'SQ',
              Value: sops.map((sop) => ({ '00081150': ui(sop.sopClassUid), '00081155': ui(sop.sopInstanceUid) })),
            },
          })),
        },
      })),
    },
  };
  return { bytes: writePart10(dataset, new Map(), '1.2.840.10008.1.2.1'), sopInstanceUid, seriesUid };
}
