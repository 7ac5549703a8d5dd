import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, multipartBody, sample, type TestArchive, type Who } from '../helpers.js';

// GET /api/instances/{uid}/provenance: who stored an instance, how, from
// where, when, its size and SHA-256, and every later event on it.

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
const UPLOADER: Who = { sub: 'pacs-1', roles: ['uploader'] };
const AUDITOR: Who = { sub: 'aud-1', roles: ['auditor'] };
const CLINICIAN: Who = { sub: 'dr-1', roles: ['clinician'] };

let a: TestArchive;
const provenance = (who: Who, uid = CT.instance) => a.as(who).get(`/api/instances/${uid}/provenance`);

beforeAll(async () => {
  a = await createTestArchive();
  const m = multipartBody([sample('CT_small.dcm')]);
  expect((await a.as(UPLOADER).post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  expect(
    (await a.as(CLINICIAN).get(`/dicom-web/studies/${CT.study}/series/${CT.series}/instances/${CT.instance}`).set('Accept', 'application/dicom')).status,
  ).toBe(200);
  expect((await a.request.put(`/api/studies/${CT.study}/labels`).send({ labels: ['vip'] })).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

describe('instance provenance', () => {
  it('says who stored the instance, through which protocol, from where, with its size and SHA-256', async () => {
    const r = await provenance(AUDITOR);
    expect(r.status).toBe(200);
    const bytes = sample('CT_small.dcm');
    expect(r.body.stored).toMatchObject({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect(r.body).toMatchObject({ studyUid: CT.study, seriesUid: CT.series });
    const store = r.body.events.find((e: any) => e.source === 'audit' && e.action === 'store');
    expect(store).toMatchObject({
      sub: 'pacs-1',
      roles: ['uploader'],
      protocol: 'http',
      method: 'POST',
      path: '/dicom-web/studies',
      status: 200,
      scope: 'instance',
    });
    expect(store.client).toBeTruthy();
    expect(r.body.events.some((e: any) => e.source === 'changes' && e.action === 'stored' && e.scope === 'instance')).toBe(true);
  });

  it('lists later events on the instance and on its study, oldest first', async () => {
    const { events } = (await provenance(AUDITOR)).body;
    expect(events.find((e: any) => e.action === 'retrieve')).toMatchObject({ sub: 'dr-1', scope: 'instance' });
    expect(events.some((e: any) => e.action === 'relabelled' && e.scope === 'study')).toBe(true);
    const times = events.map((e: any) => e.at);
    expect(times).toEqual([...times].sort());
  });

  it('is for auditors and admins only', async () => {
    expect((await provenance(CLINICIAN)).status).toBe(403);
    expect((await a.request.get(`/api/instances/${CT.instance}/provenance`)).status).toBe(200);
  });

  it('is 404 for an instance never stored here, 400 for a bad UID, with a JSON body', async () => {
    const missing = await provenance(AUDITOR, '1.2.3.4.5');
    expect(missing.status).toBe(404);
    expect(missing.body.code ?? missing.body.error).toBeDefined();
    expect((await provenance(AUDITOR, 'not-a-uid')).status).toBe(400);
  });
});
