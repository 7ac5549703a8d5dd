import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Research } from '../../server/deid/research.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { deidentifiedAeWarning } from '../../server/dimse/deidentified.js';
import { freePort } from '../global-setup.js';
import { multipartBody, sample } from '../helpers.js';
import { dcmtk, dimseArchive } from './harness.js';

// A calling AE whose roles give it a de-identified view (researcher) must
// reach no original value over DIMSE: C-FIND by a real name, C-GET and
// C-MOVE by an original UID find and send nothing, and each refusal is an
// audit row. The same queries from a clinician AE are the control.

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;
let storescp: ChildProcess;
let destDir: string;
const logged: { msg: string; callingAe?: string }[] = [];
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const CT_INSTANCE = '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322';
const CT_SERIES = '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322';

beforeAll(async () => {
  const destPort = await freePort();
  destDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-move-'));
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logged.push(JSON.parse(line));
      done();
    },
  });
  a = await dimseArchive(
    [
      { title: 'RESEARCH', host: '127.0.0.1', port: destPort, roles: ['researcher'] },
      { title: 'VIEWER', roles: ['clinician'] },
      { title: 'BOTH', roles: ['clinician', 'researcher'] },
      { title: 'DEST', host: '127.0.0.1', port: destPort },
    ],
    { deid: DEID, log: pino({ level: 'warn', base: undefined }, sink) },
  );
  const { body, contentType } = multipartBody(['CT_small.dcm', 'MR_small.dcm'].map(sample));
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
  storescp = spawn('storescp', ['-aet', 'DEST', '+xa', '-od', destDir, String(destPort)], { stdio: 'ignore' });
  for (let i = 0; i < 50 && (await dcmtk('echoscu', ['-aec', 'DEST', '127.0.0.1', String(destPort)])).code !== 0; i++)
    await new Promise((r) => setTimeout(r, 100));
});
afterAll(async () => {
  storescp?.kill();
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

describe('a calling AE with a de-identified view', () => {
  it('finds nothing by a real patient name over C-FIND, is told it is not authorised, and the refusal is audited', async () => {
    const keys = ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName=CompressedSamples^CT1', 'PatientID'];
    const control = await find('VIEWER', keys);
    expect(control.matches).toHaveLength(1);
    const r = await find('RESEARCH', keys);
    expect(r.matches).toHaveLength(0);
    expect(r.out).toMatch(/Status: 0x0?124\b/i);
    expect(r.out).not.toContain(CT_STUDY);
    const rows = await auditRows('RESEARCH', 'search');
    expect(rows.map((row) => row.outcome)).toEqual(['denied']);
    expect(rows[0].detail.reason).toBe('de-identified view');
  });

  it('gets not even pseudonyms from a C-FIND with universal matching', async () => {
    const r = await find('RESEARCH', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName', 'StudyDate']);
    expect(r.matches).toHaveLength(0);
    expect(r.out).toMatch(/Status: 0x0?124\b/i);
  });

  it('is sent nothing by a C-GET of an original Study Instance UID or SOP Instance UID', async () => {
    for (const keys of [
      ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${CT_STUDY}`],
      ['QueryRetrieveLevel=IMAGE', `StudyInstanceUID=${CT_STUDY}`, `SeriesInstanceUID=${CT_SERIES}`, `SOPInstanceUID=${CT_INSTANCE}`],
    ]) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-get-'));
      const r = await dcmtk('getscu', ['-v', '-S', '-od', dir, ...keys.flatMap((k) => ['-k', k]), ...peer('RESEARCH')]);
      expect(fs.readdirSync(dir)).toHaveLength(0);
      expect(r.stderr).toMatch(/Status: 0x124/i);
    }
    const control = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-deid-get-'));
    await dcmtk('getscu', ['-S', '-od', control, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${CT_STUDY}`, ...peer('VIEWER')]);
    expect(fs.readdirSync(control)).toHaveLength(1);
    const rows = await auditRows('RESEARCH', 'retrieve');
    expect(rows.map((row) => [row.outcome, row.detail.operation, row.detail.reason])).toEqual([
      ['denied', 'C-GET', 'de-identified view'],
      ['denied', 'C-GET', 'de-identified view'],
    ]);
    expect(rows.every((row) => row.study_uids.length === 0)).toBe(true);
  });

  it('moves nothing to a destination, even to itself, by a C-MOVE of an original UID', async () => {
    for (const dest of ['DEST', 'RESEARCH']) {
      const r = await dcmtk('movescu', ['-v', '-S', '-aem', dest, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${CT_STUDY}`, ...peer('RESEARCH')]);
      expect(r.stderr).toMatch(/Status: 0x0?124\b/i);
    }
    expect(fs.readdirSync(destDir)).toHaveLength(0);
    const rows = await auditRows('RESEARCH', 'retrieve');
    expect(rows.filter((row) => row.detail.operation === 'C-MOVE').map((row) => row.outcome)).toEqual(['denied', 'denied']);
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
    const r = await find('BOTH', ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', `PatientName=CompressedSamples^CT1`]);
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
  it('says an AE with the researcher role is refused C-FIND, C-GET and C-MOVE', () => {
    const w = deidentifiedAeWarning(research, 'R1', { sub: 'ae:R1', roles: ['researcher'], clearances: [] });
    expect(w).toMatch(/C-FIND, C-GET, C-MOVE/);
    expect(w).toContain('0x0124');
  });
  it('says nothing for a clinician, nor when no view is configured', () => {
    expect(deidentifiedAeWarning(research, 'V', { sub: 'ae:V', roles: ['clinician'], clearances: [] })).toBeUndefined();
    expect(deidentifiedAeWarning(undefined, 'R1', { sub: 'ae:R1', roles: ['researcher'], clearances: [] })).toBeUndefined();
  });
});
