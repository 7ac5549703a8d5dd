import { firstNumber, firstString, type DicomJson } from '../dicom/json.js';
import { pick, SERIES_LEVEL, STUDY_LEVEL } from '../dicom/levels.js';
import type { ParsedInstance } from '../dicom/parse.js';
import { Tag } from '../dicom/tags.js';
import type { InstanceRow, SeriesRow, StudyRow } from './rows.js';

/** The path of an instance below the DICOMweb root (PS3.18 §10.4.1). */
export function instancePath(studyUid: string, seriesUid: string, sopInstanceUid: string): string {
  return `studies/${studyUid}/series/${seriesUid}/instances/${sopInstanceUid}`;
}

/**
 * Index rows for one parsed instance. The stored metadata is the data set as
 * DICOM JSON text with a BulkDataURI (relative to the DICOMweb root; the
 * server prefixes its base URL when serving) for each bulk data element.
 */
export function buildRows(p: ParsedInstance, blob: { blobKey: string; size: number; sha256: string }): { study: StudyRow; series: SeriesRow; instance: InstanceRow } {
  const d = p.dataset;
  const str = (tag: string) => firstString(d, tag) ?? null;
  const num = (tag: string) => {
    const n = firstNumber(d, tag);
    return n === undefined ? null : Math.trunc(n);
  };
  const study: StudyRow = {
    study_uid: p.studyUid,
    patient_id: str(Tag.PatientID),
    patient_name: pnText(d, Tag.PatientName),
    patient_birth_date: str(Tag.PatientBirthDate),
    patient_sex: str(Tag.PatientSex),
    study_date: str(Tag.StudyDate),
    study_time: str(Tag.StudyTime),
    accession_number: str(Tag.AccessionNumber),
    study_id: str(Tag.StudyID),
    referring_physician_name: pnText(d, Tag.ReferringPhysicianName),
    study_description: str(Tag.StudyDescription),
    attributes: pick(d, STUDY_LEVEL),
  };
  const series: SeriesRow = {
    series_uid: p.seriesUid,
    study_uid: p.studyUid,
    modality: str(Tag.Modality),
    series_number: num(Tag.SeriesNumber),
    series_description: str(Tag.SeriesDescription),
    body_part_examined: str(Tag.BodyPartExamined),
    pps_start_date: str(Tag.PerformedProcedureStepStartDate),
    pps_start_time: str(Tag.PerformedProcedureStepStartTime),
    attributes: pick(d, SERIES_LEVEL),
  };
  const base = instancePath(p.studyUid, p.seriesUid, p.sopInstanceUid);
  const meta: DicomJson = { ...d };
  for (const [tag, b] of Object.entries(p.bulk)) meta[tag] = { vr: b.vr, BulkDataURI: `${base}/bulkdata/${tag}` };
  const sorted: DicomJson = {};
  for (const tag of Object.keys(meta).sort()) sorted[tag] = meta[tag];
  const instance: InstanceRow = {
    sop_instance_uid: p.sopInstanceUid,
    series_uid: p.seriesUid,
    study_uid: p.studyUid,
    sop_class_uid: p.sopClassUid,
    instance_number: num(Tag.InstanceNumber),
    transfer_syntax_uid: p.transferSyntaxUid,
    blob_key: blob.blobKey,
    size: blob.size,
    sha256: blob.sha256,
    // The stored Number of Frames (0028,0008); a single-frame image without it has one.
    number_of_frames: num(Tag.NumberOfFrames) ?? (p.frames ? p.frames.length : null),
    rows: num(Tag.Rows),
    columns: num(Tag.Columns),
    bits_allocated: num(Tag.BitsAllocated),
    samples_per_pixel: num(Tag.SamplesPerPixel),
    bulk: p.bulk,
    frames: p.frames,
    metadata: JSON.stringify(sorted),
  };
  return { study, series, instance };
}

/** All component groups of a PN value, `Alphabetic=Ideographic=Phonetic`, for matching. */
function pnText(d: DicomJson, tag: string): string | null {
  const v = d[tag]?.Value?.[0] as Record<string, string> | null | undefined;
  if (!v) return null;
  const groups = [v.Alphabetic ?? '', v.Ideographic ?? '', v.Phonetic ?? ''];
  while (groups.length && !groups[groups.length - 1]) groups.pop();
  return groups.join('=');
}
