import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { Research } from '../../server/deid/research.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { deidentifiedAeWarning } from '../../server/dimse/deidentified.js';
import { multipartBody, sample } from '../helpers.js';
import { dcmtk, dimseArchive, startStorescp, type Storescp } from './harness.js';

// A calling AE whose roles give it a de-identified view (researcher) must
// reach no original value over DIMSE: C-FIND by a real name, C-GET and
// C-MOVE by an original UID find and send nothing, and each refusal is an
// audit row. The same queries from a clinician AE are the control.

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;
let dest: Storescp;
const logged: { msg: string; callingAe?: string }[] = [];
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const CT_INSTANCE = '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322';
const CT_SERIES = '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322';
const MR_STUDY = '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457';
const SC_STUDY = '1.2.826.0.1.3680043.8.498.12406831542731051035295345080039845114';
const SC_INSTANCE = '1.2.826.0.1.3680043.8.498.49043964482360854182530167603505525116';

beforeAll(async () => {
  dest = await startStorescp('DEST');
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logged.push(JSON.parse(line));
      done();
    },
  });
  a = await dimseArchive(
    [
      { title: 'RESEARCH', host: '127.0.0.1', port: dest.port, roles: ['researcher'] },
      { title: 'VIEWER', roles: ['clinician'] },
      { title: 'BOTH', roles: ['clinician', 'researcher'] },
      { title: 'DEST', host: '127.0.0.1', port: dest.port },
    ],
    { deid: DEID, log: pino({ level: 'warn', base: undefined }, sink) },
  );
  const { body, contentType } = multipartBody(['CT_small.dcm', 'MR_small.dcm', 'SC_rgb_rle_2frame.dcm'].map(sample));
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
});
afterAll(async () => {
  dest?.stop();
  await a?.close();
});

const peer = (ae: string) => ['-aet', ae, '-aec', 'CAIRN', '127.0.0.1', String(a.port)];

/** findscu's answers, as dcmdump text, and everything it printed. */
async function find(ae: string, keys: string[]): Promise<{ out: string; matches: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-find-'));
  const r = await dcmtk('findscu', ['-v', '-S', '-X', '-od', dir, ...keys.flatMap((k) => ['-k', k]), ...peer(ae)]);
  const matches: string[] = [];
  for (const f of fs.readdirSync(dir).sort()) matches.push((await dcmtk('dcmdump', ['-Un', '+U8', path.join(dir, f)])).stdout);
  return { out: `${r.stdout}${r.stderr}`, matches };
}

async function auditRows(ae: string, action: string) {
  return (await a.deps.db('audit_events').where({ protocol: 'dimse', action })).filter((r) => r.detail?.callingAe === ae);
}

/** The values of a dcmdump text, each between its brackets. */
function values(dump: string): string[] {
  return [...dump.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]);
}

/** Every original identifier of the stored instances that a de-identified view must never show. */
const ORIGINALS = ['CompressedSamples', 'Lestrade', '1CT1', 'ABCD1234', '1234ABCD', '4MR1', '1.3.6.1.4.1.5962', '1.2.826.0.1.3680043.8.498'];

function leaked(bytes: Buffer | string): string[] {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('latin1');
  return ORIGINALS.filter((o) => text.includes(o));
}

const viewOf = () =>
  a.deps.research?.viewOf(newCaller({ sub: 'ae:RESEARCH', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' }))?.deidentifier;

function received(dir: string): Buffer[] {
  return fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f)));
}

describe('a calling AE with a de-identified view', () => {
  it('is shown every study over C-FIND in its view, no original identifier in any response', async () => {
    const r = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName', 'PatientID', 'StudyDate', 'OtherPatientIDsSequence']);
    expect(r.matches).toHaveLength(3);
    for (const m of r.matches) expect(leaked(values(m).join('|'))).toEqual([]);
    const d = viewOf();
    const studies = r.matches.map((m) => /\(0020,000d\) UI \[([\d.]+)\]/.exec(m)?.[1]).sort();
    expect(studies).toEqual([CT_STUDY, MR_STUDY, SC_STUDY].map((u) => d?.uid(u)).sort());
  });

  it('finds nothing by a real patient name, Patient ID or original UID, and the search is audited', async () => {
    const control = await find('VIEWER', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName=CompressedSamples^CT1']);
    expect(control.matches).toHaveLength(1);
    for (const key of ['PatientName=CompressedSamples^CT1', 'PatientName=Compressed*', 'PatientID=1CT1', `StudyInstanceUID=${CT_STUDY}`]) {
      const r = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', key]);
      expect(r.matches, key).toHaveLength(0);
      expect(r.out).toMatch(/Received Final Find Response \(Success\)/);
    }
    const rows = await auditRows('RESEARCH', 'search');
    expect(rows.every((row) => row.outcome === 'success')).toBe(true);
  });

  it('finds a study by its patient pseudonym and its series and instances by pseudonymous UIDs', async () => {
    const d = viewOf();
    const study = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${d?.uid(CT_STUDY)}`, 'PatientID']);
    expect(study.matches).toHaveLength(1);
    const pseudo = /\(0010,0020\) LO \[([^\]]+)\]/.exec(study.matches[0])?.[1] ?? '';
    expect(pseudo).toMatch(/^P[0-9A-F]{16}$/);
    const byPatient = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', `PatientID=${pseudo}`]);
    expect(byPatient.matches.map((m) => /\(0020,000d\) UI \[([\d.]+)\]/.exec(m)?.[1])).toEqual([d?.uid(CT_STUDY)]);
    // A series pseudonym resolves once the series has been shown.
    const series = await find('RESEARCH', ['QueryRetrieveLevel=SERIES', `StudyInstanceUID=${d?.uid(CT_STUDY)}`, 'SeriesInstanceUID']);
    expect(series.matches.map((m) => /\(0020,000e\) UI \[([\d.]+)\]/.exec(m)?.[1])).toEqual([d?.uid(CT_SERIES)]);
    const images = await find('RESEARCH', [
      'QueryRetrieveLevel=IMAGE',
      `StudyInstanceUID=${d?.uid(CT_STUDY)}`,
      `SeriesInstanceUID=${d?.uid(CT_SERIES)}`,
      'SOPInstanceUID',
      'PatientName',
    ]);
    expect(images.matches).toHaveLength(1);
    expect(images.matches[0]).toContain(`[${d?.uid(CT_INSTANCE)}]`);
    expect(leaked(values(images.matches[0]).join('|'))).toEqual([]);
  });

  it('matches study dates on the shifted dates it is shown, not on the stored ones', async () => {
    const d = viewOf();
    const r = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${d?.uid(CT_STUDY)}`, 'StudyDate']);
    const shown = /\(0008,0020\) DA \[(\d{8})\]/.exec(r.matches[0])?.[1] ?? '';
    expect(shown).toMatch(/^\d{8}$/);
    expect(shown).not.toBe('20040119');
    const onShown = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', `StudyDate=${shown}`]);
    expect(onShown.matches.map((m) => /\(0020,000d\) UI \[([\d.]+)\]/.exec(m)?.[1])).toContain(d?.uid(CT_STUDY));
    const onStored = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'StudyDate=20040119']);
    expect(onStored.matches.map((m) => /\(0020,000d\) UI \[([\d.]+)\]/.exec(m)?.[1])).not.toContain(d?.uid(CT_STUDY));
  });

  it('is sent a de-identified instance by a C-GET of a pseudonymous UID, no original identifier in any byte', async () => {
    const d = viewOf();
    for (const keys of [
      ['-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${d?.uid(CT_STUDY)}`],
      [
        '-S',
        '-k',
        'QueryRetrieveLevel=IMAGE',
        '-k',
        `StudyInstanceUID=${d?.uid(CT_STUDY)}`,
        '-k',
        `SeriesInstanceUID=${d?.uid(CT_SERIES)}`,
        '-k',
        `SOPInstanceUID=${d?.uid(CT_INSTANCE)}`,
      ],
    ]) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-get-'));
      const r = await dcmtk('getscu', ['-v', '-od', dir, ...keys, ...peer('RESEARCH')]);
      expect(r.stderr).toMatch(/Completed Suboperations\s*: 1/);
      const files = received(dir);
      expect(files).toHaveLength(1);
      expect(leaked(files[0])).toEqual([]);
      const dump = (await dcmtk('dcmdump', ['-Un', path.join(dir, fs.readdirSync(dir)[0])])).stdout;
      expect(dump).toContain(`(0008,0018) UI [${d?.uid(CT_INSTANCE)}]`);
      expect(dump).toMatch(/\(0012,0062\) CS \[YES\]/);
    }
  });

  it('retrieves a patient by its pseudonym at Patient Root', async () => {
    const study = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${viewOf()?.uid(MR_STUDY)}`, 'PatientID']);
    const pseudo = /\(0010,0020\) LO \[([^\]]+)\]/.exec(study.matches[0])?.[1] ?? '';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-get-'));
    await dcmtk('getscu', ['-P', '-od', dir, '-k', 'QueryRetrieveLevel=PATIENT', '-k', `PatientID=${pseudo}`, ...peer('RESEARCH')]);
    const files = received(dir);
    expect(files).toHaveLength(1);
    expect(leaked(files[0])).toEqual([]);
    const byOriginal = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-get-'));
    await dcmtk('getscu', ['-P', '-od', byOriginal, '-k', 'QueryRetrieveLevel=PATIENT', '-k', 'PatientID=4MR1', ...peer('RESEARCH')]);
    expect(fs.readdirSync(byOriginal)).toHaveLength(0);
  });

  it('is sent nothing by a C-GET of an original Study Instance UID or SOP Instance UID', async () => {
    for (const keys of [
      ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${CT_STUDY}`],
      ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${CT_STUDY}`, `SeriesInstanceUID=${CT_SERIES}`, `SOPInstanceUID=${CT_INSTANCE}`],
    ]) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-get-'));
      const r = await dcmtk('getscu', ['-v', '-S', '-od', dir, ...keys.flatMap((k) => ['-k', k]), ...peer('RESEARCH')]);
      expect(fs.readdirSync(dir)).toHaveLength(0);
      expect(r.stderr).toMatch(/C-GET Response \(Success\)/);
      expect(r.stderr).toMatch(/Completed Suboperations\s*: 0/);
    }
    const control = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-get-'));
    await dcmtk('getscu', ['-S', '-od', control, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${CT_STUDY}`, ...peer('VIEWER')]);
    expect(fs.readdirSync(control)).toHaveLength(1);
  });

  it('counts an instance its view withholds (burned-in text) as a failed sub-operation', async () => {
    const d = viewOf();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-get-'));
    const r = await dcmtk('getscu', [
      '-v',
      '-d',
      '-S',
      '-od',
      dir,
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${d?.uid(SC_STUDY)}`,
      ...peer('RESEARCH'),
    ]);
    expect(fs.readdirSync(dir)).toHaveLength(0);
    expect(r.stderr).toMatch(/Failed Suboperations\s*: 1/);
    expect(leaked(r.stderr)).toEqual([]);
    const rows = await auditRows('RESEARCH', 'retrieve');
    expect(rows.at(-1)).toMatchObject({ outcome: 'error', detail: { operation: 'C-GET', failed: 1 } });
  });

  it('names a withheld instance by its pseudonym in the Failed SOP Instance UID List', async () => {
    const d = viewOf();
    const final = await new Promise<{ status?: number; failed?: unknown }>((resolve) => {
      const client = new dimse.Client();
      const request = dimse.requests.CGetRequest.createStudyGetRequest(d?.uid(SC_STUDY) ?? '');
      const got: { status?: number; failed?: unknown } = {};
      request.on('response', (r: InstanceType<typeof dimse.responses.CGetResponse>) => {
        if (r.getStatus() === 0xff00) return;
        got.status = r.getStatus();
        got.failed = r.getDataset()?.getElement('FailedSOPInstanceUIDList');
      });
      client.addRequest(request);
      client.on('closed', () => resolve(got));
      client.on('networkError', () => resolve(got));
      client.send('127.0.0.1', a.port, 'RESEARCH', 'CAIRN');
    });
    // PS3.4 Table C.4-3: 0xA702 when every sub-operation failed.
    expect(final.status).toBe(0xa702);
    expect(final.failed).toBe(d?.uid(SC_INSTANCE));
  });

  it('moves de-identified instances to a destination by a C-MOVE of a pseudonymous UID, and nothing by an original one', async () => {
    const d = viewOf();
    const byOriginal = await dcmtk('movescu', [
      '-v',
      '-S',
      '-aem',
      'DEST',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${CT_STUDY}`,
      ...peer('RESEARCH'),
    ]);
    expect(byOriginal.stderr).toMatch(/Final Move Response \(Success\)/);
    expect(fs.readdirSync(dest.dir)).toHaveLength(0);
    const r = await dcmtk('movescu', [
      '-v',
      '-S',
      '-aem',
      'DEST',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${d?.uid(MR_STUDY)}`,
      ...peer('RESEARCH'),
    ]);
    expect(r.stderr).toMatch(/Final Move Response \(Success\)/);
    const files = received(dest.dir);
    expect(files).toHaveLength(1);
    expect(leaked(files[0])).toEqual([]);
    expect(files[0].toString('latin1')).toContain(d?.uid('1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457'));
  });

  it('is refused storage commitment, which would tell whether an original SOP Instance UID is held', async () => {
    const status = await new Promise<number | undefined>((resolve) => {
      const client = new dimse.Client();
      const request = new dimse.requests.NActionRequest('1.2.840.10008.1.20.1', '1.2.840.10008.1.20.1.1', 1);
      request.setDataset(
        new dimse.Dataset({
          TransactionUID: '1.2.3.200',
          ReferencedSOPSequence: [{ ReferencedSOPClassUID: '1.2.840.10008.5.1.4.1.1.2', ReferencedSOPInstanceUID: CT_INSTANCE }],
        }),
      );
      let s: number | undefined;
      request.on('response', (r: InstanceType<typeof dimse.responses.NActionResponse>) => {
        s = r.getStatus();
      });
      client.addRequest(request);
      client.on('closed', () => resolve(s));
      client.on('networkError', () => resolve(s));
      client.send('127.0.0.1', a.port, 'RESEARCH', 'CAIRN');
    });
    expect(status).toBe(0x0124);
    const rows = (await auditRows('RESEARCH', 'retrieve')).filter((row) => row.detail.operation === 'storage commitment');
    expect(rows.map((row) => [row.outcome, row.detail.reason])).toEqual([['denied', 'de-identified view']]);
  });

  it('is served as before when another of its roles reads without a view (a clinician who is also a researcher)', async () => {
    const r = await find('BOTH', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName=CompressedSamples^CT1']);
    expect(r.matches).toHaveLength(1);
    expect(r.matches[0]).toContain(CT_STUDY);
  });

  it('is named in a warning when the listener starts', () => {
    const warnings = logged.filter((l) => /de-identified view/.test(l.msg));
    expect(warnings.map((w) => w.callingAe)).toEqual(['RESEARCH']);
  });
});

describe('deidentifiedAeWarning', () => {
  const research = new Research(DEID, DEID.key);
  it('says an AE with the researcher role is served de-identified data over C-FIND, C-GET and C-MOVE', () => {
    const w = deidentifiedAeWarning(research, 'R1', { sub: 'ae:R1', roles: ['researcher'], clearances: [] });
    expect(w).toMatch(/C-FIND matches and its C-GET and C-MOVE send de-identified data/);
    expect(w).toContain('project researcher');
  });
  it('says nothing for a clinician, nor when no view is configured', () => {
    expect(deidentifiedAeWarning(research, 'V', { sub: 'ae:V', roles: ['clinician'], clearances: [] })).toBeUndefined();
    expect(deidentifiedAeWarning(undefined, 'R1', { sub: 'ae:R1', roles: ['researcher'], clearances: [] })).toBeUndefined();
  });
});
