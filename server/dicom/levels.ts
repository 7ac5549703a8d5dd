import type { DicomJson } from './json.js';
import { Tag } from './tags.js';

// Which attributes belong to the study and the series entity of the
// information model (PS3.4 §C.6.1.1.2-C.6.1.1.4 and §C.6.2.1.2: the patient
// and study keys of the Study Root model, the series keys).
export const STUDY_LEVEL = new Set<string>([
  Tag.SpecificCharacterSet,
  Tag.StudyDate,
  Tag.StudyTime,
  Tag.AccessionNumber,
  Tag.IssuerOfAccessionNumberSequence,
  Tag.ReferringPhysicianName,
  Tag.ReferringPhysicianIdentificationSequence,
  Tag.TimezoneOffsetFromUTC,
  Tag.StudyDescription,
  Tag.ProcedureCodeSequence,
  Tag.NameOfPhysiciansReadingStudy,
  Tag.AdmittingDiagnosesDescription,
  Tag.PatientName,
  Tag.PatientID,
  Tag.IssuerOfPatientID,
  Tag.IssuerOfPatientIDQualifiersSequence,
  Tag.PatientBirthDate,
  Tag.PatientBirthTime,
  Tag.PatientSex,
  Tag.OtherPatientIDs,
  Tag.OtherPatientNames,
  Tag.OtherPatientIDsSequence,
  Tag.PatientAge,
  Tag.PatientSize,
  Tag.PatientWeight,
  Tag.EthnicGroup,
  Tag.Occupation,
  Tag.AdditionalPatientHistory,
  Tag.PatientComments,
  Tag.StudyInstanceUID,
  Tag.StudyID,
  Tag.RequestingPhysician,
  Tag.RequestedProcedureDescription,
  Tag.AdmissionID,
]);

export const SERIES_LEVEL = new Set<string>([
  Tag.SeriesDate,
  Tag.SeriesTime,
  Tag.Modality,
  Tag.Manufacturer,
  Tag.StationName,
  Tag.SeriesDescription,
  Tag.InstitutionalDepartmentName,
  Tag.PerformingPhysicianName,
  Tag.OperatorsName,
  Tag.ManufacturerModelName,
  Tag.BodyPartExamined,
  Tag.PatientPosition,
  Tag.SeriesInstanceUID,
  Tag.SeriesNumber,
  Tag.FrameOfReferenceUID,
  Tag.Laterality,
  Tag.PerformedProcedureStepStartDate,
  Tag.PerformedProcedureStepStartTime,
  Tag.RequestAttributesSequence,
]);

export function pick(json: DicomJson, tags: Set<string>): DicomJson {
  const out: DicomJson = {};
  for (const [tag, v] of Object.entries(json)) if (tags.has(tag)) out[tag] = v;
  return out;
}
