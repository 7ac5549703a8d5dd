import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, type CairnProcess } from '../cairn-process.js';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The server's own purge of rejected data (server/main.ts): a Cairn started
// with REJECTION_RETENTION_DAYS=0 deletes what was rejected before it started,
// blobs and index rows, and audits it as the command rejection-purge.

let a: TestArchive;
let cairn: CairnProcess | undefined;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await cairn?.stop();
  await a?.close();
});

describe('the scheduled purge of rejected data', () => {
  it('deletes at start what was rejected longer ago than REJECTION_RETENTION_DAYS, and audits it', async () => {
    const x = syntheticInstance();
    const live = syntheticInstance({ studyUid: x.studyUid });
    const { body, contentType } = multipartBody([x.bytes, live.bytes]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
    expect((await a.request.post(`/dicom-web/studies/${x.studyUid}/series/${x.seriesUid}/reject/113039^DCM`)).status).toBe(200);
    const { blob_key: key } = await a.deps.db('instances').where({ sop_instance_uid: x.sopInstanceUid }).first('blob_key');
    cairn = await startCairn(a, { REJECTION_RETENTION_DAYS: '0' });
    const deadline = Date.now() + 30_000;
    while ((await a.deps.db('instances').where({ sop_instance_uid: x.sopInstanceUid })).length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(await a.deps.db('instances').where({ sop_instance_uid: x.sopInstanceUid })).toHaveLength(0);
    await expect(a.deps.blobs.read(key, 1)).rejects.toThrow();
    expect(await a.deps.db('instances').where({ sop_instance_uid: live.sopInstanceUid })).toHaveLength(1);
    let audit: { sub: string; protocol: string; detail: Record<string, unknown> } | undefined;
    while (!audit && Date.now() < deadline) {
      audit = await a.deps.db('audit_events').where({ action: 'rejection-purge' }).whereRaw('? = any(instance_uids)', [x.sopInstanceUid]).first();
      if (!audit) await new Promise((r) => setTimeout(r, 200));
    }
    expect(audit).toMatchObject({ sub: 'cairn', protocol: 'cli', detail: { purged: 1, retentionDays: 0, command: 'rejection-purge' } });
  }, 90_000);
});
