import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUARD } from '../server/http/guard.js';
import { apiRouter } from '../server/api/routes.js';
import { dicomwebRouter } from '../server/dicomweb/routes.js';
import { createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance } from './synthetic.js';

// The audit trail: append-only, searchable by auditors and admins,
// written before the data leaves; and the server log never holds patient
// names, IDs or birth dates.

const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    logLines.push(chunk.toString());
    cb();
  },
});

let a: TestArchive;
const inst = syntheticInstance({ PatientName: 'Zyxwer^Qlorinda', PatientID: 'PID-77123', PatientBirthDate: '19440229' });

beforeAll(async () => {
  a = await createTestArchive({ log: pino({ level: 'debug' }, sink) });
  const { body, contentType } = multipartBody([inst.bytes]);
  expect(
    (
      await a
        .as({ sub: 'pacs-1', roles: ['uploader'] })
        .post('/dicom-web/studies')
        .set('Content-Type', contentType)
        .send(body)
    ).status,
  ).toBe(200);
  await a.as({ sub: 'dr-a', roles: ['clinician'] }).get('/dicom-web/studies?PatientName=Zyxwer*&PatientID=PID-77123&PatientBirthDate=19440229');
  await a.as({ sub: 'dr-a', roles: ['clinician'] }).get(`/dicom-web/studies/${inst.studyUid}/metadata`);
  await a
    .as({ sub: 'dr-b', roles: ['clinician'] })
    .get(`/dicom-web/studies/${inst.studyUid}/series/${inst.seriesUid}/instances/${inst.sopInstanceUid}/metadata`);
});
afterAll(async () => {
  await a?.close();
});

const auditor = () => a.as({ sub: 'aud-1', roles: ['auditor'] });

describe('GET /api/audit', () => {
  it('lists events newest first, with who, what, where from and which UIDs', async () => {
    const res = await auditor().get('/api/audit');
    expect(res.status).toBe(200);
    const ids = res.body.events.map((e: any) => e.id);
    expect(ids).toEqual([...ids].sort((x: number, y: number) => y - x));
    const stored = res.body.events.find((e: any) => e.action === 'store');
    expect(stored).toMatchObject({
      sub: 'pacs-1',
      roles: ['uploader'],
      method: 'POST',
      status: 200,
      outcome: 'success',
      study_uids: [inst.studyUid],
      instance_uids: [inst.sopInstanceUid],
    });
    expect(stored.client).toMatch(/127\.0\.0\.1|::1|::ffff/);
    const search = res.body.events.find((e: any) => e.action === 'search');
    expect(search.detail.query).toContain('PatientName=Zyxwer');
  });

  it('filters by user, study, action and time, and pages', async () => {
    const byUser = await auditor().get('/api/audit?user=dr-a');
    expect(byUser.body.events.map((e: any) => e.action).sort()).toEqual(['retrieve', 'search']);
    const byStudy = await auditor().get(`/api/audit?study=${inst.studyUid}`);
    expect(byStudy.body.events.map((e: any) => e.sub).sort()).toEqual(['dr-a', 'dr-a', 'dr-b', 'pacs-1']);
    const byAction = await auditor().get('/api/audit?action=retrieve');
    expect(byAction.body.events.map((e: any) => e.sub).sort()).toEqual(['dr-a', 'dr-b']);
    const future = await auditor().get(`/api/audit?from=${new Date(Date.now() + 3600_000).toISOString()}`);
    expect(future.body.events).toEqual([]);
    const past = await auditor().get(`/api/audit?to=${new Date(Date.now() - 3600_000).toISOString()}`);
    expect(past.body.events).toEqual([]);
    const page1 = await auditor().get('/api/audit?limit=2');
    const page2 = await auditor().get(`/api/audit?limit=2&before=${page1.body.next}`);
    expect(page1.body.events).toHaveLength(2);
    expect(page2.body.events[0].id).toBeLessThan(page1.body.events[1].id);
    const skip = await auditor().get('/api/audit?limit=1&offset=1&action=search');
    expect(skip.body.events).toHaveLength(0);
  });

  it('refuses unknown filters and bad values', async () => {
    expect((await auditor().get('/api/audit?patient=x')).status).toBe(400);
    expect((await auditor().get('/api/audit?from=yesterday')).status).toBe(400);
    expect((await auditor().get('/api/audit?limit=5000')).status).toBe(400);
  });

  it('is for auditors and admins only', async () => {
    expect((await a.request.get('/api/audit')).status).toBe(200);
    for (const role of ['clinician', 'researcher', 'uploader'] as const) expect((await a.as({ roles: [role] }).get('/api/audit')).status, role).toBe(403);
  });

  it('an auditor sees no images', async () => {
    expect((await auditor().get(`/dicom-web/studies/${inst.studyUid}/metadata`)).status).toBe(403);
  });
});

describe('the audit table', () => {
  it('cannot be changed through the API: no route writes or deletes it', async () => {
    expect((await a.request.delete('/api/audit')).status).toBe(405);
    expect((await a.request.put('/api/audit').send({})).status).toBe(405);
  });

  it('refuses UPDATE, DELETE and TRUNCATE in the database itself', async () => {
    await expect(a.deps.db('audit_events').update({ sub: 'someone-else' })).rejects.toThrow(/append-only/);
    await expect(a.deps.db('audit_events').del()).rejects.toThrow(/append-only/);
    await expect(a.deps.db.raw('truncate audit_events')).rejects.toThrow(/append-only/);
  });

  it('when an event cannot be written, the request fails and its data is not sent', async () => {
    await a.deps.db.raw('alter table audit_events add constraint audit_refuses check (false) not valid');
    try {
      const res = await a.request.get(`/dicom-web/studies/${inst.studyUid}/metadata`);
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: 'InternalError', message: 'internal error' });
      expect(res.text).not.toContain(inst.sopInstanceUid);
    } finally {
      await a.deps.db.raw('alter table audit_events drop constraint audit_refuses');
    }
  });
});

describe('every route that touches patient data has a guard', () => {
  it.each([
    ['dicomweb', dicomwebRouter],
    ['api', apiRouter],
  ] as const)('%s router', (_name, make) => {
    const router = make(a.deps);
    expect(router.stack.length).toBeGreaterThan(3);
    for (const layer of router.stack) {
      const fns = layer.stack as unknown as Record<symbol, unknown>[];
      const g = fns.findIndex((fn) => GUARD in fn);
      expect(g, `${layer.methods.join(',')} ${layer.path}`).toBeGreaterThanOrEqual(0);
      expect(g, `${layer.path}: the guard comes before the handler`).toBeLessThan(fns.length - 1);
    }
  });
});

describe('the server log', () => {
  it('holds UIDs but never the patient name, ID or birth date', () => {
    const all = logLines.join('');
    expect(all).toContain(inst.studyUid);
    for (const secret of ['Zyxwer', 'Qlorinda', 'PID-77123', '19440229']) expect(all).not.toContain(secret);
  });
});
