import dcmjs from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLUMN } from '../../server/db/search.js';
import { ATTRIBUTES, indexColumns, returnedByDefault, SEQUENCE_MATCHING_KEYS, type Level } from '../../server/dicom/attributes.js';
import { SERIES_LEVEL, STUDY_LEVEL } from '../../server/dicom/levels.js';
import { keywordOf, Tag, vrOf } from '../../server/dicom/tags.js';
import { KEYS } from '../../server/dicomweb/qido-params.js';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';

const { DicomMetaDictionary, DicomDict } = dcmjs.data;
type Json = Record<string, { vr: string; Value?: unknown[] }>;

const TABLE: Record<Level, string> = { study: 'studies', series: 'series', instance: 'instances' };
const ALIAS: Record<Level, string> = { study: 's', series: 'se', instance: 'i' };

describe('the attribute registry', () => {
  it('names each attribute by its PS3.6 tag, keyword and VR', () => {
    for (const e of ATTRIBUTES) {
      expect(e.tag, e.keyword).toBe(Tag[e.keyword]);
      expect(keywordOf(e.tag), e.tag).toBe(e.keyword);
      expect(vrOf(e.tag), e.keyword).toBe(e.vr);
    }
  });

  it('names each attribute and each column once', () => {
    expect(new Set(ATTRIBUTES.map((e) => e.tag)).size).toBe(ATTRIBUTES.length);
    for (const level of ['study', 'series', 'instance'] as const) expect(new Set(indexColumns(level)).size).toBe(indexColumns(level).length);
  });

  it('puts study and series attributes in the entity they are stored with', () => {
    for (const e of ATTRIBUTES.filter((x) => x.column !== null)) {
      expect(STUDY_LEVEL.has(e.tag), e.keyword).toBe(e.level === 'study');
      expect(SERIES_LEVEL.has(e.tag), e.keyword).toBe(e.level === 'series');
    }
  });

  it('gives the search its tag → column map: every matched column, and nothing else', () => {
    const expected = Object.fromEntries(ATTRIBUTES.filter((e) => e.matching && e.column).map((e) => [e.tag, `${ALIAS[e.level]}.${e.column}`]));
    expect(COLUMN).toEqual(expected);
  });

  it('gives QIDO its matching keys, each with its level and matching', () => {
    const expected = Object.fromEntries([
      ...ATTRIBUTES.filter((e) => e.matching).map((e) => [e.tag, { level: e.level, type: e.matching }]),
      ...SEQUENCE_MATCHING_KEYS.map((k) => [k.path, { level: k.level, type: k.matching }]),
    ]);
    expect(KEYS).toEqual(expected);
    // Every matching key has a column, except the computed ModalitiesInStudy and the sequence keys.
    const withoutColumn = Object.keys(KEYS).filter((tag) => !COLUMN[tag]);
    expect(withoutColumn.sort()).toEqual([Tag.ModalitiesInStudy, ...SEQUENCE_MATCHING_KEYS.map((k) => k.path)].sort());
  });
});

describe('the registry against the index and QIDO', () => {
  let t: TestArchive;
  const study = '2.25.7001';
  const series = '2.25.7002';
  const sop = '2.25.7003';
  const sopClass = '1.2.840.10008.5.1.4.1.1.7';
  const ROW_KEY: Record<Level, Record<string, string>> = { study: { study_uid: study }, series: { series_uid: series }, instance: { sop_instance_uid: sop } };

  beforeAll(async () => {
    t = await createTestArchive();
    const dataset = {
      SOPClassUID: sopClass,
      SOPInstanceUID: sop,
      StudyInstanceUID: study,
      SeriesInstanceUID: series,
      SpecificCharacterSet: 'ISO_IR 192',
      PatientID: 'REG-1',
      PatientName: 'Yamada^Tarou=山田^太郎',
      PatientBirthDate: '19800202',
      PatientSex: 'F',
      StudyDate: '20240301',
      StudyTime: '0930',
      AccessionNumber: 'ACC-REG',
      StudyID: 'SID-1',
      ReferringPhysicianName: 'Ref^Rita',
      StudyDescription: 'Registry study',
      Modality: 'OT',
      SeriesNumber: '7',
      SeriesDescription: 'Registry series',
      BodyPartExamined: 'HAND',
      PerformedProcedureStepStartDate: '20240302',
      PerformedProcedureStepStartTime: '101500',
      InstanceNumber: '3',
      NumberOfFrames: '2',
      Rows: 4,
      Columns: 5,
      BitsAllocated: 8,
      SamplesPerPixel: 1,
    };
    const meta = {
      MediaStorageSOPClassUID: sopClass,
      MediaStorageSOPInstanceUID: sop,
      TransferSyntaxUID: '1.2.840.10008.1.2.1',
      ImplementationClassUID: '2.25.1',
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
    };
    const dict = new DicomDict(DicomMetaDictionary.denaturalizeDataset(meta));
    dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
    const { body, contentType } = multipartBody([Buffer.from(dict.write())]);
    const res = await t.request.post('/dicom-web/studies').set('content-type', contentType).send(body);
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('names only columns the migrated database has, integer for IS and US values', async () => {
    const rows: { table_name: string; column_name: string; data_type: string }[] = await t.deps
      .db('information_schema.columns')
      .where('table_schema', 'public')
      .whereIn('table_name', Object.values(TABLE))
      .select('table_name', 'column_name', 'data_type');
    const type = new Map(rows.map((r) => [`${r.table_name}.${r.column_name}`, r.data_type]));
    for (const e of ATTRIBUTES.filter((x) => x.column !== null)) {
      const key = `${TABLE[e.level]}.${e.column}`;
      expect(type.get(key), key).toBe(e.vr === 'IS' || e.vr === 'US' ? 'integer' : 'text');
    }
  });

  it('fills each column at ingest from its attribute', async () => {
    const db = t.deps.db;
    const rows: Record<Level, Record<string, unknown>> = {
      study: await db('studies').where(ROW_KEY.study).first(),
      series: await db('series').where(ROW_KEY.series).first(),
      instance: await db('instances').where(ROW_KEY.instance).first(),
    };
    expect(rows.study).toMatchObject({
      study_uid: study,
      patient_id: 'REG-1',
      patient_name: 'Yamada^Tarou=山田^太郎',
      patient_birth_date: '19800202',
      patient_sex: 'F',
      study_date: '20240301',
      study_time: '0930',
      accession_number: 'ACC-REG',
      study_id: 'SID-1',
      referring_physician_name: 'Ref^Rita',
      study_description: 'Registry study',
    });
    expect(rows.series).toMatchObject({
      series_uid: series,
      modality: 'OT',
      series_number: 7,
      series_description: 'Registry series',
      body_part_examined: 'HAND',
      pps_start_date: '20240302',
      pps_start_time: '101500',
    });
    expect(rows.instance).toMatchObject({
      sop_instance_uid: sop,
      sop_class_uid: sopClass,
      instance_number: 3,
      number_of_frames: 2,
      rows: 4,
      columns: 5,
      bits_allocated: 8,
      samples_per_pixel: 1,
    });
    // Every registry column was filled by the data set above.
    for (const e of ATTRIBUTES.filter((x) => x.column !== null)) expect(rows[e.level][e.column!], e.keyword).not.toBeNull();
  });

  it('matches on every matching key with a column', async () => {
    const level: Record<Level, string> = { study: 'studies', series: 'series', instance: 'instances' };
    const value: Record<string, string> = {
      PatientName: 'yamada*',
      ReferringPhysicianName: 'REF^RITA',
      StudyDate: '20240301',
      PatientBirthDate: '19800202',
      StudyTime: '0930',
      PerformedProcedureStepStartDate: '20240302',
      PerformedProcedureStepStartTime: '1015',
      ModalitiesInStudy: 'OT',
    };
    for (const e of ATTRIBUTES.filter((x) => x.matching)) {
      const stored: Record<string, unknown> = (await t.deps.db(TABLE[e.level]).where(ROW_KEY[e.level]).first()) ?? {};
      const v = value[e.keyword] ?? String(stored[e.column!]);
      const res = await t.request.get(`/dicom-web/${level[e.level]}?${e.keyword}=${encodeURIComponent(v)}`);
      expect(res.status, e.keyword).toBe(200);
      expect((res.body as Json[]).length, e.keyword).toBe(1);
    }
  });

  it('is returned by QIDO without includefield as the registry says', async () => {
    for (const level of ['study', 'series', 'instance'] as const) {
      const path = {
        study: `/studies?StudyInstanceUID=${study}`,
        series: `/studies/${study}/series`,
        instance: `/studies/${study}/series/${series}/instances`,
      }[level];
      const [r] = (await t.request.get(`/dicom-web${path}`)).body as Json[];
      for (const tag of [...returnedByDefault(level, 'required'), ...returnedByDefault(level, 'if-known')])
        expect(r[tag], `${level} ${keywordOf(tag)}`).toBeDefined();
      for (const e of ATTRIBUTES.filter((x) => x.level === level && !x.returned)) expect(r[e.tag], `${level} ${e.keyword}`).toBeUndefined();
    }
  });
});
