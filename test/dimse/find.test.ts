import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLabelRules } from '../../server/labels.js';
import { multipartBody, sample } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';
import { dcmtk, dimseArchive } from './harness.js';

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;
const AES = [
  { title: 'VIEWER', roles: ['clinician'] },
  { title: 'CLEARED', roles: ['clinician'], clearances: ['vip'] },
  { title: 'MODALITY', roles: ['uploader'] },
];
const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const MR_STUDY = '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457';
const NM_STUDY = '1.3.6.1.4.1.5962.1.2.8.20040826185059.5457';

beforeAll(async () => {
  // The MR study is labelled vip at ingest: only CLEARED may see it.
  a = await dimseArchive(AES, { labelRules: parseLabelRules('[{"label":"vip","when":{"Modality":["MR"]}}]') });
  const files = ['CT_small.dcm', 'MR_small.dcm', 'JPEG2000.dcm', 'JPEG-lossy.dcm', 'SC_rgb_rle_2frame.dcm', 'chrGerm.dcm'];
  const { body, contentType } = multipartBody(files.map(sample));
  const r = await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
  expect(r.status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

/** Runs findscu and returns each pending response's identifier as dcmdump text. */
async function find(ae: string, model: '-S' | '-P', keys: string[], extra: string[] = []): Promise<{ code: number; out: string; matches: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-find-'));
  const r = await dcmtk('findscu', [
    '-v',
    model,
    '-X',
    '-od',
    dir,
    ...extra,
    '-aet',
    ae,
    '-aec',
    'CAIRN',
    ...keys.flatMap((k) => ['-k', k]),
    '127.0.0.1',
    String(a.port),
  ]);
  const files = fs.readdirSync(dir).sort();
  const matches: string[] = [];
  for (const f of files) matches.push((await dcmtk('dcmdump', ['-Un', '+U8', path.join(dir, f)])).stdout);
  return { code: r.code, out: `${r.stdout}${r.stderr}`, matches };
}

describe('C-FIND', () => {
  it('finds studies at Study Root with universal and single-value keys, unique key and counts returned', async () => {
    const r = await find('VIEWER', '-S', [
      'QueryRetrieveLevel=STUDY',
      'StudyInstanceUID',
      'PatientName',
      'ModalitiesInStudy',
      'NumberOfStudyRelatedInstances',
      'PatientID=1CT1',
    ]);
    expect(r.code).toBe(0);
    expect(r.matches).toHaveLength(1);
    expect(r.matches[0]).toContain(CT_STUDY);
    expect(r.matches[0]).toContain('CompressedSamples^CT1');
    expect(r.matches[0]).toMatch(/\(0020,1208\) IS \[1\]/);
    expect(r.matches[0]).toMatch(/\(0008,0061\) CS \[CT\]/);
    expect(r.matches[0]).toContain('(0008,0054) AE [CAIRN]');
  });

  it('matches wildcards on person names case-insensitively, as QIDO does', async () => {
    const r = await find('VIEWER', '-S', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName=compressedsamples*']);
    const studies = r.matches.map((m) => /\(0020,000d\) UI \[([\d.]+)\]/.exec(m)?.[1]).sort();
    expect(studies).toEqual([CT_STUDY, NM_STUDY].sort());
  });

  it('matches date ranges', async () => {
    const r = await find('VIEWER', '-S', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'StudyDate=20040101-20040630']);
    expect(r.matches).toHaveLength(1);
    expect(r.matches[0]).toContain(CT_STUDY);
  });

  it('finds series within a study and instances within a series', async () => {
    const series = await find('VIEWER', '-S', [
      'QueryRetrieveLevel=SERIES',
      `StudyInstanceUID=${NM_STUDY}`,
      'SeriesInstanceUID',
      'Modality',
      'NumberOfSeriesRelatedInstances',
    ]);
    expect(series.matches).toHaveLength(1);
    expect(series.matches[0]).toMatch(/\(0008,0060\) CS \[NM\]/);
    expect(series.matches[0]).toMatch(/\(0020,1209\) IS \[2\]/);
    const seriesUid = /\(0020,000e\) UI \[([\d.]+)\]/.exec(series.matches[0])?.[1];
    const images = await find('VIEWER', '-S', [
      'QueryRetrieveLevel=IMAGE',
      `StudyInstanceUID=${NM_STUDY}`,
      `SeriesInstanceUID=${seriesUid}`,
      'SOPInstanceUID',
      'SOPClassUID',
      'Rows',
    ]);
    expect(images.matches).toHaveLength(2);
    for (const m of images.matches) expect(m).toMatch(/\(0028,0010\) US \d+/);
  });

  it('finds patients at Patient Root, one response per patient', async () => {
    const r = await find('VIEWER', '-P', ['QueryRetrieveLevel=PATIENT', 'PatientID', 'PatientName', 'NumberOfPatientRelatedStudies']);
    const ids = r.matches.map((m) => /\(0010,0020\) LO \[([^\]]*)\]/.exec(m)?.[1]).sort();
    expect(ids).toEqual(['1CT1', '8NM1', 'ID1', 'SCSGERM']);
  });

  it('refuses the PATIENT level at Study Root with 0xA900', async () => {
    const r = await find('VIEWER', '-S', ['QueryRetrieveLevel=PATIENT', 'PatientID']);
    expect(r.out).toMatch(/0xa900|DataSetDoesNotMatchSOPClass/i);
    expect(r.matches).toHaveLength(0);
  });

  it('returns names in the Unicode they were stored as', async () => {
    const r = await find('VIEWER', '-S', ['QueryRetrieveLevel=STUDY', 'PatientID=SCSGERM', 'PatientName']);
    expect(r.matches).toHaveLength(1);
    expect(r.matches[0]).toContain('Äneas^Rüdiger');
  });

  it('does not show a labelled study to an AE without the clearance, and shows it to one with it', async () => {
    const hidden = await find('VIEWER', '-S', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${MR_STUDY}`]);
    expect(hidden.code).toBe(0);
    expect(hidden.matches).toHaveLength(0);
    const all = await find('VIEWER', '-S', ['QueryRetrieveLevel=IMAGE', 'SOPInstanceUID', 'Modality=MR']);
    expect(all.matches).toHaveLength(0);
    const shown = await find('CLEARED', '-S', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${MR_STUDY}`]);
    expect(shown.matches).toHaveLength(1);
  });

  it('refuses a C-FIND from an AE without a search role and audits every search as dimse', async () => {
    const r = await find('MODALITY', '-S', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID']);
    expect(r.matches).toHaveLength(0);
    const rows = await a.deps.db('audit_events').where({ protocol: 'dimse', action: 'search' });
    expect(rows.some((row) => row.detail?.callingAe === 'VIEWER' && row.outcome === 'success')).toBe(true);
    expect(rows.some((row) => row.detail?.callingAe === 'MODALITY' && row.outcome === 'denied')).toBe(true);
  });
});

describe('C-CANCEL', () => {
  it('stops a C-FIND that is cancelled and ends it with status Cancel', async () => {
    const studyUid = uid();
    const seriesUid = uid();
    const parts = Array.from({ length: 300 }, () => syntheticInstance({ studyUid, seriesUid }).bytes);
    const { body, contentType } = multipartBody(parts);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
    const r = await find('VIEWER', '-S', ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${studyUid}`, 'SOPInstanceUID'], ['--cancel', '3']);
    expect(r.out).toMatch(/Received Final Find Response \(Cancel/);
    expect(r.matches.length).toBeLessThan(300);
    const audit = await a.deps.db('audit_events').where({ protocol: 'dimse', action: 'search' }).orderBy('id', 'desc').first();
    expect(audit.detail.cancelled).toBe(true);
  });
});
