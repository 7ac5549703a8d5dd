import path from 'node:path';
import dimse from 'dcmjs-dimse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir } from '../helpers.js';
import { dimseArchive } from './harness.js';

// A C-STORE whose command names another SOP Class or Instance than its data
// set holds. DCMTK's storescu always takes both from the file, so the
// request is built with dcmjs-dimse's client, its command changed after.

type Archive = Awaited<ReturnType<typeof dimseArchive>>;
let a: Archive;
const CT = path.join(fixturesDir, 'CT_small.dcm');
const CT_INSTANCE = '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322';
const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';

beforeAll(async () => {
  a = await dimseArchive([{ title: 'MODALITY', roles: ['uploader'] }]);
});
afterAll(async () => {
  await a?.close();
});

function store(change: (r: InstanceType<typeof dimse.requests.CStoreRequest>) => void): Promise<{ status?: number; comment?: string }> {
  return new Promise((resolve) => {
    const client = new dimse.Client();
    const request = new dimse.requests.CStoreRequest(CT);
    change(request);
    const out: { status?: number; comment?: string } = {};
    request.on('response', (r: InstanceType<typeof dimse.responses.CStoreResponse>) => {
      out.status = r.getStatus();
      out.comment = r.getErrorComment();
    });
    client.addRequest(request);
    client.on('closed', () => resolve(out));
    client.on('networkError', () => resolve(out));
    client.send('127.0.0.1', a.port, 'MODALITY', 'CAIRN');
  });
}

async function nothingStored(): Promise<void> {
  expect(await a.deps.db('instances').select('sop_instance_uid')).toEqual([]);
  expect(await a.deps.db('changes').select('seq')).toEqual([]);
  const blobs: unknown[] = [];
  for await (const b of a.deps.blobs.list('instances/')) blobs.push(b);
  expect(blobs).toEqual([]);
}

describe('C-STORE of a data set other than the one its command announces', () => {
  it('refuses another SOP Instance UID with 0xA900 and stores nothing', async () => {
    const r = await store((req) => req.setAffectedSopInstanceUid('1.2.826.0.1.3680043.2.1125.99.1'));
    expect(r.status).toBe(0xa900);
    expect(r.comment).toMatch(/SOP Instance UID is not the Affected SOP Instance UID/);
    await nothingStored();
    const audit = await a.deps.db('audit_events').where({ protocol: 'dimse', action: 'store', outcome: 'invalid' });
    expect(audit.map((row) => row.detail.sopInstanceUid)).toEqual([CT_INSTANCE]);
  });

  it('refuses another SOP Class UID with 0xA900 (PS3.4 Table B.2-1) and stores nothing', async () => {
    const r = await store((req) => req.setAffectedSopClassUid(MR_IMAGE_STORAGE));
    expect(r.status).toBe(0xa900);
    expect(r.comment).toMatch(/SOP Class UID is not the Affected SOP Class UID/);
    await nothingStored();
  });

  it('stores the same data set when its command names it', async () => {
    const r = await store(() => undefined);
    expect(r.status).toBe(0x0000);
    expect(await a.deps.db('instances').where({ sop_instance_uid: CT_INSTANCE }).first()).toBeDefined();
  });
});
