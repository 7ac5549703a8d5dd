import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir } from '../helpers.js';
import { dcmtk, dimseArchive } from './harness.js';

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;
const AES = [
  { title: 'MODALITY', host: '127.0.0.1', roles: ['uploader'] },
  { title: 'VIEWER', roles: ['clinician'] },
  { title: 'ELSEWHERE', host: '10.9.9.9', roles: ['uploader'] },
];

beforeAll(async () => {
  a = await dimseArchive(AES);
});
afterAll(async () => {
  await a?.close();
});

const peer = (ae: string) => ['-aet', ae, '-aec', 'CAIRN', '127.0.0.1', String(a.port)];

describe('C-ECHO and association', () => {
  it('answers C-ECHO from a registered AE', async () => {
    const r = await dcmtk('echoscu', peer('VIEWER'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('refuses an unregistered calling AE at association, and audits the refusal', async () => {
    const r = await dcmtk('echoscu', peer('STRANGER'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Association Rejected|rejected/i);
    const rows = await a.deps.db('audit_events').where({ protocol: 'dimse', outcome: 'denied' });
    expect(rows.some((row) => row.detail?.callingAe === 'STRANGER')).toBe(true);
  });

  it('refuses a registered AE calling from another address', async () => {
    const r = await dcmtk('echoscu', peer('ELSEWHERE'));
    expect(r.code).not.toBe(0);
  });

  it('refuses a called AE title other than its own', async () => {
    const r = await dcmtk('echoscu', ['-aet', 'VIEWER', '-aec', 'NOTCAIRN', '127.0.0.1', String(a.port)]);
    expect(r.code).not.toBe(0);
  });
});

describe('C-STORE', () => {
  it('stores a sample through the one store path, found by QIDO, audited as dimse', async () => {
    const r = await dcmtk('storescu', [...peer('MODALITY'), path.join(fixturesDir, 'CT_small.dcm')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const q = await a.request.get('/dicom-web/instances').query({ SOPInstanceUID: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322' });
    expect(q.status).toBe(200);
    expect(q.body).toHaveLength(1);
    const audit = await a.deps.db('audit_events').where({ protocol: 'dimse', action: 'store' });
    expect(audit.length).toBeGreaterThan(0);
    expect(audit[0].detail.callingAe).toBe('MODALITY');
  });

  /** The Pixel Data element (7FE0,0010) of a little-endian file, whole: native or every fragment up to its delimiter. */
  function pixelData(file: Buffer, ts: string | undefined): Buffer | undefined {
    const at = file.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
    if (at < 0) return undefined;
    const header = ts === '1.2.840.10008.1.2' ? 8 : 12;
    const length = file.readUInt32LE(at + header - 4);
    if (length !== 0xffffffff) return file.subarray(at, at + header + length);
    const end = file.indexOf(Buffer.from([0xfe, 0xff, 0xdd, 0xe0]), at);
    return file.subarray(at, end + 8);
  }

  const PROPOSE: Record<string, string> = {
    'CT_small.dcm': '-xe',
    'MR_small_implicit.dcm': '-xi',
    'JPEG-lossy.dcm': '-xx',
    'JPEG2000.dcm': '-xw',
    'SC_rgb_rle_2frame.dcm': '-xr',
    'chrGerm.dcm': '-xe',
    'test-SR.dcm': '-xe',
  };
  const SAMPLES = Object.keys(PROPOSE);

  it('keeps every sample as a Part-10 file in the syntax it was sent in, its pixel data as sent', async () => {
    // storescu proposes uncompressed syntaxes unless told which compressed one to propose, as a modality holding such files would.
    for (const [f, propose] of Object.entries(PROPOSE)) {
      const r = await dcmtk('storescu', [propose, ...peer('MODALITY'), path.join(fixturesDir, f)]);
      expect(r.stderr, f).toBe('');
      expect(r.code, f).toBe(0);
    }
    for (const f of SAMPLES) {
      const original = fs.readFileSync(path.join(fixturesDir, f));
      const ts = /\(0002,0010\) UI \[([\d.]+)/.exec((await dcmtk('dcmdump', ['+P', '0002,0010', '-Un', path.join(fixturesDir, f)])).stdout)?.[1];
      const sop = /\(0008,0018\) UI \[([\d.]+)/.exec((await dcmtk('dcmdump', ['+P', '0008,0018', path.join(fixturesDir, f)])).stdout)?.[1];
      const row = await a.deps.db('instances').where({ sop_instance_uid: sop }).first();
      expect(row, f).toBeDefined();
      expect(row.transfer_syntax_uid, f).toBe(ts);
      const stored = await a.deps.blobs.read(row.blob_key, Number(row.size));
      expect(stored.toString('latin1', 128, 132)).toBe('DICM');
      // storescu re-encodes the data set it reads (sequence lengths, trailing padding), never the pixel data.
      expect(pixelData(stored, ts), f).toEqual(pixelData(original, ts));
    }
  });

  it('names the sending AE in the File Meta Information', async () => {
    const row = await a.deps.db('instances').where({ sop_instance_uid: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322' }).first();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-dimse-')), 'x.dcm');
    fs.writeFileSync(file, await a.deps.blobs.read(row.blob_key, Number(row.size)));
    const r = await dcmtk('dcmdump', ['-Un', '+P', '0002,0016', '+P', '0002,0002', file]);
    expect(r.stdout).toContain('[MODALITY]');
    expect(r.stdout).toContain('1.2.840.10008.5.1.4.1.1.2');
  });

  it('refuses a C-STORE from an AE without the uploader role with 0x0124, and audits it', async () => {
    const r = await dcmtk('storescu', ['-d', ...peer('VIEWER'), path.join(fixturesDir, 'MR_small.dcm')]);
    expect(`${r.stdout}${r.stderr}`).toMatch(/0x0124|Refused: NotAuthorized|Not ?Authori[sz]ed/i);
    const rows = await a.deps.db('audit_events').where({ protocol: 'dimse', action: 'store', outcome: 'denied' });
    expect(rows.some((row) => row.detail?.callingAe === 'VIEWER')).toBe(true);
  });

  it('answers a second C-STORE of an instance with other bytes with 0xC411 and keeps the first', async () => {
    // MR_small.dcm is the instance of MR_small_implicit.dcm (stored above) in Explicit VR: the same UID, other bytes.
    const uid = '1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457';
    const before = await a.deps.db('instances').where({ sop_instance_uid: uid }).first();
    const r = await dcmtk('storescu', ['-d', ...peer('MODALITY'), path.join(fixturesDir, 'MR_small.dcm')]);
    expect(`${r.stdout}${r.stderr}`).toMatch(/DIMSE Status\s*: 0xc411/i);
    const after = await a.deps.db('instances').where({ sop_instance_uid: uid }).first();
    expect(after.blob_key).toBe(before.blob_key);
    expect(after.transfer_syntax_uid).toBe('1.2.840.10008.1.2');
  });

  it('answers an identical second C-STORE with success, as STOW does', async () => {
    const r = await dcmtk('storescu', [...peer('MODALITY'), path.join(fixturesDir, 'CT_small.dcm')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
