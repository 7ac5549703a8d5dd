import { Tag } from './tags.js';

// The attributes the index keeps as columns or QIDO matches on: one table,
// from which the search's tag → column map, the QIDO matching keys and the
// plain copies at ingest are derived. The migrations create the columns; a
// test checks that every column named here exists in the migrated database.

export type Level = 'study' | 'series' | 'instance';

/**
 * How a QIDO matching key is matched (PS3.4 §C.2.2.2):
 * - uid: UID list matching (§C.2.2.2.2);
 * - text: single value matching, or wild card matching (§C.2.2.2.4) when the value has `*` or `?`;
 * - pn: person name matching, case-insensitive, by component group;
 * - date / time: range matching (§C.2.2.2.5) on DA / TM values;
 * - int: single value matching of an integer;
 * - list: any of several values (ModalitiesInStudy), or one wild card value.
 */
export type Matching = 'uid' | 'text' | 'pn' | 'date' | 'time' | 'int' | 'list';

/**
 * Whether QIDO returns the attribute without includefield (PS3.18 Tables
 * 10.6.3-3, -4, -5): 'required' ones are sent empty when unknown, 'if-known'
 * ones only when present; false when only includefield or a matching key
 * asks for it.
 */
export type Returned = 'required' | 'if-known' | false;

export interface IndexedAttribute {
  keyword: keyof typeof Tag;
  /** The VR of PS3.6; a test checks it against the data dictionary. */
  vr: string;
  level: Level;
  /** The index column of the level's table; null when the value is computed from other rows. */
  column: string | null;
  /** How QIDO matches it; null when it is a column QIDO returns but does not match on. */
  matching: Matching | null;
  returned: Returned;
}

const a = <const K extends keyof typeof Tag, const V extends string, const L extends Level, const C extends string | null>(
  keyword: K,
  vr: V,
  level: L,
  column: C,
  matching: Matching | null,
  returned: Returned,
) => ({ keyword, tag: Tag[keyword], vr, level, column, matching, returned }) as const;

/** In each level, the order of the columns is the order of the index statement's parameters. */
export const ATTRIBUTES = [
  a('StudyInstanceUID', 'UI', 'study', 'study_uid', 'uid', 'required'),
  a('PatientID', 'LO', 'study', 'patient_id', 'text', 'required'),
  a('PatientName', 'PN', 'study', 'patient_name', 'pn', 'required'),
  a('PatientBirthDate', 'DA', 'study', 'patient_birth_date', 'date', 'required'),
  a('PatientSex', 'CS', 'study', 'patient_sex', 'text', 'required'),
  a('StudyDate', 'DA', 'study', 'study_date', 'date', 'required'),
  a('StudyTime', 'TM', 'study', 'study_time', 'time', 'required'),
  a('AccessionNumber', 'SH', 'study', 'accession_number', 'text', 'required'),
  a('StudyID', 'SH', 'study', 'study_id', 'text', 'required'),
  a('ReferringPhysicianName', 'PN', 'study', 'referring_physician_name', 'pn', 'required'),
  a('StudyDescription', 'LO', 'study', 'study_description', 'text', false),
  // Computed from the modality column of the study's series.
  a('ModalitiesInStudy', 'CS', 'study', null, 'list', 'required'),

  a('SeriesInstanceUID', 'UI', 'series', 'series_uid', 'uid', 'required'),
  a('Modality', 'CS', 'series', 'modality', 'text', 'required'),
  a('SeriesNumber', 'IS', 'series', 'series_number', 'int', 'required'),
  a('SeriesDescription', 'LO', 'series', 'series_description', 'text', 'if-known'),
  a('BodyPartExamined', 'CS', 'series', 'body_part_examined', 'text', false),
  a('PerformedProcedureStepStartDate', 'DA', 'series', 'pps_start_date', 'date', 'if-known'),
  a('PerformedProcedureStepStartTime', 'TM', 'series', 'pps_start_time', 'time', 'if-known'),

  a('SOPInstanceUID', 'UI', 'instance', 'sop_instance_uid', 'uid', 'required'),
  a('SOPClassUID', 'UI', 'instance', 'sop_class_uid', 'uid', 'required'),
  a('InstanceNumber', 'IS', 'instance', 'instance_number', 'int', 'required'),
  a('NumberOfFrames', 'IS', 'instance', 'number_of_frames', null, 'if-known'),
  a('Rows', 'US', 'instance', 'rows', null, 'if-known'),
  a('Columns', 'US', 'instance', 'columns', null, 'if-known'),
  a('BitsAllocated', 'US', 'instance', 'bits_allocated', null, 'if-known'),
  a('SamplesPerPixel', 'US', 'instance', 'samples_per_pixel', null, false),
] as const satisfies readonly (IndexedAttribute & { tag: string })[];

type Entry = (typeof ATTRIBUTES)[number];

/** The registry's index columns of one level. */
export type IndexColumn<L extends Level> = Extract<Entry, { level: L }>['column'] & string;

/** The value a plain copy puts in a column: PN as all component groups, IS and US as integers. */
type ColumnValue<V> = V extends 'IS' | 'US' ? number | null : string | null;
export type IndexValues<L extends Level> = { [E in Extract<Entry, { level: L; column: string }> as E['column']]: ColumnValue<E['vr']> };

/** The index columns of a level, in the order of ATTRIBUTES. */
export function indexColumns<L extends Level>(level: L): IndexColumn<L>[] {
  return ATTRIBUTES.filter((e) => e.level === level && e.column !== null).map((e) => e.column as IndexColumn<L>);
}

/**
 * Sequence matching keys (PS3.4 §C.2.2.2.6): `sequence.item` tag paths,
 * matched in the stored attributes of the level's rows rather than a column.
 */
export const SEQUENCE_MATCHING_KEYS: readonly { path: string; level: Level; matching: Matching }[] = [
  { path: `${Tag.RequestAttributesSequence}.${Tag.ScheduledProcedureStepID}`, level: 'series', matching: 'text' },
  { path: `${Tag.RequestAttributesSequence}.${Tag.RequestedProcedureID}`, level: 'series', matching: 'text' },
];

/** The tags QIDO returns by default at a level (see Returned). */
export function returnedByDefault(level: Level, how: Exclude<Returned, false>): string[] {
  return ATTRIBUTES.filter((e) => e.level === level && e.returned === how).map((e) => e.tag);
}
