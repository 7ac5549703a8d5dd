import type { DicomJson } from '../dicom/json.js';

export interface StudyRow {
  study_uid: string;
  patient_id: string | null;
  patient_name: string | null;
  patient_birth_date: string | null;
  patient_sex: string | null;
  study_date: string | null;
  study_time: string | null;
  accession_number: string | null;
  study_id: string | null;
  referring_physician_name: string | null;
  study_description: string | null;
  attributes: DicomJson;
  /** `attributes` as QIDO serves it (see attributesText in build-rows.ts). */
  attributes_text: string;
  /** Sensitivity labels (server/access.ts decides who sees them). */
  labels: string[];
}

export interface SeriesRow {
  series_uid: string;
  study_uid: string;
  modality: string | null;
  series_number: number | null;
  series_description: string | null;
  body_part_examined: string | null;
  pps_start_date: string | null;
  pps_start_time: string | null;
  attributes: DicomJson;
  /** `attributes` as QIDO serves it (see attributesText in build-rows.ts). */
  attributes_text: string;
  /** Sensitivity labels (server/access.ts decides who sees them). */
  labels: string[];
}

export interface Span {
  offset: number;
  length: number;
}

export interface InstanceRow {
  sop_instance_uid: string;
  series_uid: string;
  study_uid: string;
  sop_class_uid: string;
  instance_number: number | null;
  transfer_syntax_uid: string;
  blob_key: string;
  size: number;
  sha256: string;
  number_of_frames: number | null;
  rows: number | null;
  columns: number | null;
  bits_allocated: number | null;
  samples_per_pixel: number | null;
  bulk: Record<string, Span & { vr: string }>;
  frames: Span[][] | null;
  metadata: string;
}
