import dcmjs from 'dcmjs';

// Tag ↔ keyword ↔ VR, from dcmjs' copy of the PS3.6 data dictionary.
interface Entry {
  tag: string;
  vr: string;
  keyword: string;
}

const byTag = new Map<string, Entry>();
const byKeyword = new Map<string, Entry>();
for (const [keyword, e] of Object.entries(dcmjs.data.DicomMetaDictionary.nameMap as Record<string, { tag: string; vr: string }>)) {
  const m = /^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$/.exec(e.tag);
  if (!m) continue; // range entries such as (60xx,3000)
  const tag = (m[1] + m[2]).toUpperCase();
  const entry = { tag, vr: e.vr.trim(), keyword };
  byTag.set(tag, entry);
  byKeyword.set(keyword, entry);
}

/** The 34 Value Representations of PS3.5 Table 6.2-1: the only ones a DICOM JSON "vr" may hold (PS3.18 §F.2.3). */
export const VALID_VRS: ReadonlySet<string> = new Set([
  'AE',
  'AS',
  'AT',
  'CS',
  'DA',
  'DS',
  'DT',
  'FD',
  'FL',
  'IS',
  'LO',
  'LT',
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'PN',
  'SH',
  'SL',
  'SQ',
  'SS',
  'ST',
  'SV',
  'TM',
  'UC',
  'UI',
  'UL',
  'UN',
  'UR',
  'US',
  'UT',
  'UV',
]);

/**
 * The registry VR of a tag as PS3.6 gives it, which for a few attributes is a
 * choice: dcmjs writes "US or SS" as `xs`, "OB or OW" as `ox`, "US or OW" as
 * `lt`, and the "UL" of directory offsets as `up`. Overlay groups
 * (60xx, PS3.5 §7.6) repeat the entries of group 6000. Undefined when unknown.
 */
export function dictionaryVr(tag: string): string | undefined {
  const e = byTag.get(tag);
  if (e) return e.vr;
  const group = parseInt(tag.slice(0, 4), 16);
  if (group >= 0x6000 && group <= 0x601e && group % 2 === 0) return byTag.get(`6000${tag.slice(4)}`)?.vr;
  return undefined;
}

/**
 * A valid VR for a tag when no data set says more: the registry VR, with a
 * choice resolved to its first reading (PS3.5 §A.1: OW for "OB or OW" and
 * "US or OW" as Implicit VR Little Endian encodes them; US for "US or SS").
 * The choice that depends on the data set is made by resolveVr() in vr.ts.
 * UN when unknown or private.
 */
export function vrOf(tag: string): string {
  if (tag.slice(4) === '0000') return 'UL';
  const vr = dictionaryVr(tag);
  if (vr === undefined) return tag === '7FE00010' ? 'OW' : 'UN';
  return VALID_VRS.has(vr) ? vr : (AMBIGUOUS_DEFAULT[vr] ?? 'UN');
}

const AMBIGUOUS_DEFAULT: Record<string, string> = { xs: 'US', ox: 'OW', lt: 'OW', up: 'UL' };

/** The tags whose registry VR is a choice (see dictionaryVr), group 6000 standing for every overlay group. */
export function ambiguousVrTags(): string[] {
  return [...byTag.values()].filter((e) => !VALID_VRS.has(e.vr) && e.vr !== 'na').map((e) => e.tag);
}

export function keywordOf(tag: string): string | undefined {
  return byTag.get(tag)?.keyword;
}

/** Resolves a query attribute given as an 8-digit tag or a keyword. */
export function resolveAttribute(key: string): { tag: string; vr: string } | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(key)) {
    const tag = key.toUpperCase();
    return { tag, vr: vrOf(tag) };
  }
  const e = byKeyword.get(key);
  return e ? { tag: e.tag, vr: vrOf(e.tag) } : undefined;
}

export const Tag = Object.freeze({
  FileMetaInformationGroupLength: '00020000',
  TransferSyntaxUID: '00020010',
  SpecificCharacterSet: '00080005',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  SeriesDate: '00080021',
  StudyTime: '00080030',
  SeriesTime: '00080031',
  AccessionNumber: '00080050',
  IssuerOfAccessionNumberSequence: '00080051',
  InstanceAvailability: '00080056',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  Manufacturer: '00080070',
  ReferringPhysicianName: '00080090',
  ReferringPhysicianIdentificationSequence: '00080096',
  TimezoneOffsetFromUTC: '00080201',
  StationName: '00081010',
  StudyDescription: '00081030',
  ProcedureCodeSequence: '00081032',
  SeriesDescription: '0008103E',
  InstitutionalDepartmentName: '00081040',
  PerformingPhysicianName: '00081050',
  NameOfPhysiciansReadingStudy: '00081060',
  OperatorsName: '00081070',
  AdmittingDiagnosesDescription: '00081080',
  ManufacturerModelName: '00081090',
  ReferencedSOPClassUID: '00081150',
  ReferencedSOPInstanceUID: '00081155',
  RetrieveURL: '00081190',
  WarningReason: '00081196',
  FailureReason: '00081197',
  FailedSOPSequence: '00081198',
  ReferencedSOPSequence: '00081199',
  PatientName: '00100010',
  PatientID: '00100020',
  IssuerOfPatientID: '00100021',
  IssuerOfPatientIDQualifiersSequence: '00100024',
  PatientBirthDate: '00100030',
  PatientBirthTime: '00100032',
  PatientSex: '00100040',
  OtherPatientIDs: '00101000',
  OtherPatientNames: '00101001',
  OtherPatientIDsSequence: '00101002',
  PatientAge: '00101010',
  PatientSize: '00101020',
  PatientWeight: '00101030',
  EthnicGroup: '00102160',
  Occupation: '00102180',
  AdditionalPatientHistory: '001021B0',
  PatientComments: '00104000',
  BodyPartExamined: '00180015',
  PatientPosition: '00185100',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  StudyID: '00200010',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  FrameOfReferenceUID: '00200052',
  Laterality: '00200060',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  SamplesPerPixel: '00280002',
  PhotometricInterpretation: '00280004',
  NumberOfFrames: '00280008',
  Rows: '00280010',
  Columns: '00280011',
  BitsAllocated: '00280100',
  PixelRepresentation: '00280103',
  RedPaletteColorLookupTableDescriptor: '00281101',
  GreenPaletteColorLookupTableDescriptor: '00281102',
  BluePaletteColorLookupTableDescriptor: '00281103',
  LUTDescriptor: '00283002',
  RequestingPhysician: '00321032',
  RequestedProcedureDescription: '00321060',
  AdmissionID: '00380010',
  ScheduledProcedureStepID: '00400009',
  PerformedProcedureStepStartDate: '00400244',
  PerformedProcedureStepStartTime: '00400245',
  RequestAttributesSequence: '00400275',
  RequestedProcedureID: '00401001',
  ChannelMinimumValue: '54000110',
  ChannelMaximumValue: '54000112',
  WaveformBitsAllocated: '54001004',
  WaveformPaddingValue: '5400100A',
  WaveformData: '54001010',
  PixelData: '7FE00010',
  Item: 'FFFEE000',
  ItemDelimitationItem: 'FFFEE00D',
  SequenceDelimitationItem: 'FFFEE0DD',
});
