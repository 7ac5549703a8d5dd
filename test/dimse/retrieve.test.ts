import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLabelRules } from '../../server/labels.js';
import { multipartBody, sample } from '../helpers.js';
import { dcmtk, dimseArchive, startStorescp, type Storescp } from './harness.js';

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;
let dest: Storescp;
const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const CT_INSTANCE = '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322';
const MR_STUDY = '1.3.6.1.4.1.5962.1.2.4.20040826185059.5457';
const NM_STUDY = '1.3.6.1.4.1.5962.1.2.8.20040826185059.5457';

beforeAll(async () => {
  // The move destination: DCMTK's storescp.
  dest = await startStorescp('DEST');
  const AES = [
    { title: 'VIEWER', roles: ['clinician'] },
    { title: 'CLEARED', roles: ['clinician'], clearances: ['vip'] },
    { title: 'MODALITY', roles: ['uploader'] },
    { title: 'DEST', host: '127.0.0.1', port: dest.port },
    { title: 'DOWN', host: '127.0.0.1', port: 1 },
  ];
  a = await dimseArchive(AES, { labelRules: parseLabelRules('[{"label":"vip","when":{"Modality":["MR"]}}]') });
  const { body, contentType } = multipartBody(['CT_small.dcm', 'MR_small.dcm', 'JPEG2000.dcm', 'JPEG-lossy.dcm'].map(sample));
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
});
afterAll(async () => {
  dest?.stop();
  await a?.close();
});

function freshDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-get-'));
}

async function received(dir: string): Promise<{ sop: string; ts: string }[]> {
  const out: { sop: string; ts: string }[] = [];
  for (const f of fs.readdirSync(dir)) {
    const d = (await dcmtk('dcmdump', ['-Un', '+P', '0008,0018', '+P', '0002,0010', path.join(dir, f)])).stdout;
    out.push({ sop: /\(0008,0018\) UI \[([\d.]+)\]/.exec(d)?.[1] ?? '', ts: /\(0002,0010\) UI \[([\d.]+)\]/.exec(d)?.[1] ?? '' });
  }
  return out;
}

const peer = (ae: string) => ['-aet', ae, '-aec', 'CAIRN', '127.0.0.1', String(a.port)];

describe('C-GET', () => {
  it('sends a study back over the same association, its instance as stored', async () => {
    const dir = freshDir();
    const r = await dcmtk('getscu', ['-v', '-S', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${CT_STUDY}`, ...peer('VIEWER')]);
    expect(r.code, r.stderr).toBe(0);
    expect(await received(dir)).toEqual([{ sop: CT_INSTANCE, ts: '1.2.840.10008.1.2.1' }]);
    expect(r.stderr).toMatch(/Completed Suboperations\s*: 1/);
  });

  it('keeps compressed pixel data compressed when the SCU accepts the stored syntax', async () => {
    const dir = freshDir();
    const r = await dcmtk('getscu', ['-v', '-S', '+xw', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${NM_STUDY}`, ...peer('VIEWER')]);
    const got = await received(dir);
    expect(got.map((g) => g.ts)).toContain('1.2.840.10008.1.2.4.91');
    // The JPEG Extended instance has no accepted context: a failed sub-operation, named in the final response.
    expect(r.stderr).toMatch(/Failed Suboperations\s*: 1/);
    expect(r.stderr).toMatch(/Warning|0xb000/i);
  });

  it('retrieves nothing of a labelled study for an AE without the clearance', async () => {
    const dir = freshDir();
    const hidden = await dcmtk('getscu', ['-v', '-S', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${MR_STUDY}`, ...peer('VIEWER')]);
    expect(hidden.code).toBe(0);
    expect(fs.readdirSync(dir)).toHaveLength(0);
    const dir2 = freshDir();
    await dcmtk('getscu', ['-S', '-od', dir2, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${MR_STUDY}`, ...peer('CLEARED')]);
    expect(fs.readdirSync(dir2)).toHaveLength(1);
  });

  it('refuses an AE without a retrieve role, and audits retrieves as dimse', async () => {
    const dir = freshDir();
    const r = await dcmtk('getscu', ['-v', '-S', '-od', dir, '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${CT_STUDY}`, ...peer('MODALITY')]);
    expect(fs.readdirSync(dir)).toHaveLength(0);
    expect(r.stderr).toMatch(/Status: 0x124/i);
    const rows = await a.deps.db('audit_events').where({ protocol: 'dimse', action: 'retrieve' });
    expect(rows.some((row) => row.detail?.callingAe === 'MODALITY' && row.outcome === 'denied')).toBe(true);
    expect(rows.some((row) => row.detail?.callingAe === 'VIEWER' && row.outcome === 'success' && row.study_uids.includes(CT_STUDY))).toBe(true);
  });

  it('retrieves a series and an instance by their unique keys', async () => {
    const series = '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322';
    const dir = freshDir();
    await dcmtk('getscu', [
      '-S',
      '-od',
      dir,
      '-k',
      'QueryRetrieveLevel=IMAGE',
      '-k',
      `StudyInstanceUID=${CT_STUDY}`,
      '-k',
      `SeriesInstanceUID=${series}`,
      '-k',
      `SOPInstanceUID=${CT_INSTANCE}`,
      ...peer('VIEWER'),
    ]);
    expect((await received(dir)).map((g) => g.sop)).toEqual([CT_INSTANCE]);
  });
});

describe('C-MOVE', () => {
  it('moves a study to a registered destination, counting its sub-operations', async () => {
    const r = await dcmtk('movescu', ['-v', '-S', '-aem', 'DEST', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${NM_STUDY}`, ...peer('VIEWER')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Final Move Response \(Success\)/);
    const got = await received(dest.dir);
    expect(got.map((g) => g.ts).sort()).toEqual(['1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.91']);
  });

  it('refuses an unknown destination with 0xA801', async () => {
    const r = await dcmtk('movescu', [
      '-v',
      '-S',
      '-aem',
      'NOWHERE',
      '-k',
      'QueryRetrieveLevel=STUDY',
      '-k',
      `StudyInstanceUID=${CT_STUDY}`,
      ...peer('VIEWER'),
    ]);
    expect(r.stderr).toMatch(/0xa801|MoveDestinationUnknown/i);
  });

  it('counts every sub-operation failed when the destination cannot be reached', async () => {
    const r = await dcmtk('movescu', ['-v', '-S', '-aem', 'DOWN', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${CT_STUDY}`, ...peer('VIEWER')]);
    // PS3.4 Table C.4-2: 0xA702, unable to perform sub-operations.
    expect(r.stderr).toMatch(/Final Move Response \(Refused: OutOfResourcesSubOperations\)/);
  });
});
