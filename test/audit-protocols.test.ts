import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller, type Principal } from '../server/access.js';
import { storeInstance } from '../server/archive.js';
import { auditMessage } from '../server/audit-syslog.js';
import { openAudit, recordAudit } from '../server/audit.js';
import { appendAuditEvent } from '../server/db/audit.js';
import { createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance } from './synthetic.js';

// The audit trail records callers of every protocol: a command-line import
// or a DIMSE association writes its row without any HTTP request, and the
// auditor reads it back through the same API.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

const IMPORTER: Principal = { sub: 'import-job', roles: ['uploader'], clearances: [] };
const MODALITY: Principal = { sub: 'ct-scanner-3', roles: ['uploader'], clearances: [] };
const ctx = () => ({ ...a.deps, log: () => undefined });
const auditor = () => a.as({ sub: 'aud-1', roles: ['auditor'] });

describe('a caller that is not an HTTP request', () => {
  it('a command-line import stores through the archive and its audit row reads back from GET /api/audit', async () => {
    const inst = syntheticInstance();
    const caller = newCaller(IMPORTER, { protocol: 'cli', command: 'import /data/incoming' });
    expect(await storeInstance(ctx(), caller, Readable.from([inst.bytes]))).toMatchObject({ ok: true, duplicate: false });
    await recordAudit(openAudit(a.deps), caller, 'store', 'success', { files: 1 });
    const res = await auditor().get('/api/audit?user=import-job');
    expect(res.status).toBe(200);
    expect(res.body.events).toHaveLength(1);
    expect(res.body.events[0]).toMatchObject({
      sub: 'import-job',
      roles: ['uploader'],
      protocol: 'cli',
      client: null,
      action: 'store',
      method: null,
      path: null,
      status: null,
      outcome: 'success',
      study_uids: [inst.studyUid],
      series_uids: [inst.seriesUid],
      instance_uids: [inst.sopInstanceUid],
      break_glass: false,
      reason: null,
      detail: { files: 1, command: 'import /data/incoming' },
    });
  });

  it('a DIMSE association names its calling AE title and address', async () => {
    const inst = syntheticInstance();
    const caller = newCaller(MODALITY, { protocol: 'dimse', callingAe: 'CT3', address: '10.1.2.3' });
    expect(await storeInstance(ctx(), caller, Readable.from([inst.bytes]))).toMatchObject({ ok: true });
    await recordAudit(openAudit(a.deps), caller, 'store', 'success');
    const res = await auditor().get(`/api/audit?study=${inst.studyUid}`);
    expect(res.body.events).toHaveLength(1);
    expect(res.body.events[0]).toMatchObject({
      sub: 'ct-scanner-3',
      protocol: 'dimse',
      client: '10.1.2.3',
      method: null,
      detail: { callingAe: 'CT3' },
      instance_uids: [inst.sopInstanceUid],
    });
  });

  it('a store the caller may not make is refused before anything is stored, and can be audited as denied', async () => {
    const inst = syntheticInstance();
    const caller = newCaller({ sub: 'viewer-only', roles: ['clinician'], clearances: [] }, { protocol: 'cli', command: 'import' });
    await expect(storeInstance(ctx(), caller, Readable.from([inst.bytes]))).rejects.toMatchObject({ status: 403, code: 'Forbidden' });
    await recordAudit(openAudit(a.deps), caller, 'store', 'denied');
    expect(await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid })).toHaveLength(0);
    const res = await auditor().get('/api/audit?user=viewer-only');
    expect(res.body.events[0]).toMatchObject({ protocol: 'cli', outcome: 'denied', instance_uids: [] });
  });
});

describe('HTTP rows', () => {
  it('say they came over HTTP, with method, path and status', async () => {
    const inst = syntheticInstance();
    const { body, contentType } = multipartBody([inst.bytes]);
    await a
      .as({ sub: 'pacs-2', roles: ['uploader'] })
      .post('/dicom-web/studies')
      .set('Content-Type', contentType)
      .send(body);
    const res = await auditor().get('/api/audit?user=pacs-2');
    expect(res.body.events[0]).toMatchObject({
      protocol: 'http',
      method: 'POST',
      path: '/dicom-web/studies',
      status: 200,
      instance_uids: [inst.sopInstanceUid],
    });
  });

  it('cannot be written without method, path and status (the table refuses them)', async () => {
    const event = {
      sub: 'x',
      roles: [],
      protocol: 'http' as const,
      client: null,
      action: 'search',
      method: null,
      path: null,
      status: null,
      outcome: 'success',
      study_uids: [],
      series_uids: [],
      instance_uids: [],
      break_glass: false,
      reason: null,
      detail: null,
    };
    await expect(appendAuditEvent(a.deps.db, event)).rejects.toThrow(/audit_events_http_request/);
  });
});

describe('the syslog copy of a row that is not HTTP', () => {
  it('names the protocol where an HTTP row names the request, and grades the outcome without a status', () => {
    const base = {
      sub: 'import-job',
      roles: ['uploader'],
      client: null,
      action: 'store',
      method: null,
      path: null,
      status: null,
      study_uids: ['1.2.3'],
      series_uids: [],
      instance_uids: ['1.2.3.4'],
      break_glass: false,
      reason: null,
      detail: null,
      at: new Date(),
    };
    const ok = auditMessage({ ...base, protocol: 'cli', outcome: 'success' }, 'host');
    expect(ok).toContain('<ActiveParticipant UserID="cli" AlternativeUserID="host" UserIsRequestor="false"/>');
    expect(ok).not.toContain('null');
    expect(ok).toContain('EventOutcomeIndicator="0"');
    expect(auditMessage({ ...base, protocol: 'dimse', outcome: 'denied' }, 'host')).toContain('EventOutcomeIndicator="4"');
    expect(auditMessage({ ...base, protocol: 'dimse', outcome: 'error' }, 'host')).toContain('EventOutcomeIndicator="8"');
  });
});
