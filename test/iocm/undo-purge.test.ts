import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { purgeRejected, type ArchiveContext } from '../../server/archive.js';
import { ADMIN, createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';

// Undoing a rejection (an admin's correction) and deleting rejected data
// for good once REJECTION_RETENTION_DAYS have passed (IHE IOCM).

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive({ rejectionRetentionDays: 30 });
});
afterAll(async () => {
  await a?.close();
});

const JSON_ACCEPT = 'application/dicom+json';

async function stow(parts: Buffer[]) {
  const { body, contentType } = multipartBody(parts);
  return a.request.post('/dicom-web/studies').set('Content-Type', contentType).set('Accept', JSON_ACCEPT).send(body);
}

/** A study of two series, series A rejected by the shortcut. */
async function rejectedSeries() {
  const studyUid = uid();
  const x = syntheticInstance({ studyUid });
  const y = syntheticInstance({ studyUid, seriesUid: x.seriesUid });
  const keep = syntheticInstance({ studyUid });
  expect((await stow([x.bytes, y.bytes, keep.bytes])).status).toBe(200);
  const res = await a.request.post(`/dicom-web/studies/${studyUid}/series/${x.seriesUid}/reject/113001^DCM`);
  expect(res.body.rejected).toBe(2);
  return { studyUid, x, y, keep, note: res.body.rejectionNote as { seriesUid: string; sopInstanceUid: string } };
}

const visibleSops = async (studyUid: string) =>
  ((await a.request.get(`/dicom-web/studies/${studyUid}/instances`).set('Accept', JSON_ACCEPT)).body as Record<string, { Value: string[] }>[])
    .map((r) => r['00080018'].Value[0])
    .sort();

/** Moves the rejections of a study back in time, as if they were that many days old. */
const age = (studyUid: string, days: number) => a.deps.db.raw(`update rejections set at = now() - ?::interval where study_uid = ?`, [`${days} days`, studyUid]);

describe('undoing a rejection', () => {
  it('brings the instances back, writes restored changes and an audit row, and accepts their UIDs again', async () => {
    const s = await rejectedSeries();
    expect(await visibleSops(s.studyUid)).not.toContain(s.x.sopInstanceUid);
    const res = await a.request.post(`/api/studies/${s.studyUid}/series/${s.x.seriesUid}/unreject`);
    expect(res.status).toBe(200);
    expect(res.body.restored.map((r: { sopInstanceUid: string }) => r.sopInstanceUid).sort()).toEqual([s.x.sopInstanceUid, s.y.sopInstanceUid].sort());
    expect(await visibleSops(s.studyUid)).toEqual([s.x.sopInstanceUid, s.y.sopInstanceUid, s.keep.sopInstanceUid, s.note.sopInstanceUid].sort());
    const changes = await a.deps.db('changes').where({ study_uid: s.studyUid, kind: 'restored' }).select('sop_instance_uid');
    expect(changes.map((c) => c.sop_instance_uid).sort()).toEqual([s.x.sopInstanceUid, s.y.sopInstanceUid].sort());
    const audit = await a.deps.db('audit_events').where({ action: 'rejection-undo' }).whereRaw('? = any(instance_uids)', [s.x.sopInstanceUid]).first();
    expect(audit).toMatchObject({ sub: 'test-admin', status: 200, outcome: 'success' });
    expect(audit.detail).toMatchObject({ restored: 2 });
    // Sent again, the same bytes are a duplicate of a live instance, not a rejected one.
    const again = await stow([s.x.bytes]);
    expect(again.status).toBe(200);
  });

  it('appears in the change feed as a restore with the instance current', async () => {
    const s = await rejectedSeries();
    const since = Number((await a.deps.db('changes').max('seq as m').first())?.m);
    expect((await a.request.post(`/api/studies/${s.studyUid}/series/${s.x.seriesUid}/instances/${s.y.sopInstanceUid}/unreject`)).status).toBe(200);
    const feed = await a.request.get(`/api/changefeed?offset=${since}&includeMetadata=false`);
    expect(feed.body.map((e: { Action: string; SopInstanceUid: string; State: string }) => [e.Action, e.SopInstanceUid, e.State])).toEqual([
      ['restore', s.y.sopInstanceUid, 'current'],
    ]);
  });

  it('forgets a rejection of an instance not stored yet, so that it is accepted when it arrives', async () => {
    const later = syntheticInstance();
    await a.deps.db('rejections').insert({
      sop_instance_uid: later.sopInstanceUid,
      study_uid: later.studyUid,
      series_uid: later.seriesUid,
      kos_instance_uid: uid(),
      code_value: '113001',
      coding_scheme: 'DCM',
    });
    expect((await stow([later.bytes])).status).toBe(409);
    const res = await a.request.post(`/api/studies/${later.studyUid}/unreject`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ restored: [], forgotten: 1 });
    expect((await stow([later.bytes])).status).toBe(200);
  });

  it('answers 404 where nothing the admin may see is rejected, and restores nothing hidden from it', async () => {
    expect((await a.request.post(`/api/studies/${uid()}/unreject`)).status).toBe(404);
    const s = await rejectedSeries();
    expect((await a.request.put(`/api/studies/${s.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
    const res = await a.request.post(`/api/studies/${s.studyUid}/series/${s.x.seriesUid}/unreject`);
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('NothingRejected');
    expect(await a.deps.db('instances').where({ sop_instance_uid: s.x.sopInstanceUid }).first('rejected')).toEqual({ rejected: true });
  });

  it('is for admins only, and checks its UIDs', async () => {
    const s = await rejectedSeries();
    expect((await a.as({ sub: 'dr', roles: ['clinician'] }).post(`/api/studies/${s.studyUid}/unreject`)).status).toBe(403);
    expect((await a.as({ sub: 'pacs', roles: ['uploader'] }).post(`/api/studies/${s.studyUid}/unreject`)).status).toBe(403);
    const bad = await a.request.post(`/api/studies/${s.studyUid}/series/${s.x.seriesUid}/instances/not-a-uid/unreject`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/sopInstanceUid/);
  });
});

describe('purging rejected data', () => {
  it('deletes nothing whose retention period has not passed', async () => {
    const s = await rejectedSeries();
    const res = await a.request.post('/api/rejections/purge');
    expect(res.status).toBe(200);
    expect(res.body.retentionDays).toBe(30);
    expect(await a.deps.db('instances').where({ sop_instance_uid: s.x.sopInstanceUid })).toHaveLength(1);
  });

  it('deletes the blobs and then the index rows of instances rejected longer ago, with deleted changes and an audit row', async () => {
    const s = await rejectedSeries();
    await age(s.studyUid, 31);
    const keys = await a.deps.db('instances').whereIn('sop_instance_uid', [s.x.sopInstanceUid, s.y.sopInstanceUid]).pluck('blob_key');
    const res = await a.request.post('/api/rejections/purge');
    expect(res.status).toBe(200);
    expect(res.body.purged).toBeGreaterThanOrEqual(2);
    expect(await a.deps.db('instances').whereIn('sop_instance_uid', [s.x.sopInstanceUid, s.y.sopInstanceUid])).toHaveLength(0);
    for (const key of keys) await expect(a.deps.blobs.read(key, 1)).rejects.toThrow();
    // The series went with its instances; the live one and the note stay.
    expect(await a.deps.db('series').where({ series_uid: s.x.seriesUid })).toHaveLength(0);
    expect(await visibleSops(s.studyUid)).toEqual([s.keep.sopInstanceUid, s.note.sopInstanceUid].sort());
    const deleted = await a.deps.db('changes').where({ study_uid: s.studyUid, kind: 'deleted' }).pluck('sop_instance_uid');
    expect(deleted.sort()).toEqual([s.x.sopInstanceUid, s.y.sopInstanceUid].sort());
    const audit = await a.deps.db('audit_events').where({ action: 'rejection-purge' }).whereRaw('? = any(instance_uids)', [s.x.sopInstanceUid]).first();
    expect(audit).toMatchObject({ status: 200, outcome: 'success' });
    // The UIDs stay rejected.
    expect((await stow([s.x.bytes])).status).toBe(409);
  });

  it('keeps an instance whose blob could not be deleted, for the next purge', async () => {
    const s = await rejectedSeries();
    await age(s.studyUid, 40);
    const failing: ArchiveContext = {
      ...a.deps,
      blobs: { ...a.deps.blobs, delete: async () => Promise.reject(new Error('store down')) },
      log: () => undefined,
    };
    const admin = newCaller(ADMIN, { protocol: 'cli', command: 'test' });
    expect(await purgeRejected(failing, admin, 30)).toBe(0);
    expect(await a.deps.db('instances').whereIn('sop_instance_uid', [s.x.sopInstanceUid, s.y.sopInstanceUid])).toHaveLength(2);
    expect(await purgeRejected({ ...a.deps, log: () => undefined }, admin, 30)).toBeGreaterThanOrEqual(2);
    expect(await a.deps.db('instances').whereIn('sop_instance_uid', [s.x.sopInstanceUid, s.y.sopInstanceUid])).toHaveLength(0);
  });

  it('runs once at a time across replicas: a second purge while one runs is refused with 409', async () => {
    const trx = await a.deps.db.transaction();
    try {
      await trx.raw(`select pg_advisory_xact_lock(hashtext('cairn:rejection-purge'))`);
      const res = await a.request.post('/api/rejections/purge');
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('PurgeRunning');
    } finally {
      await trx.rollback();
    }
    expect((await a.request.post('/api/rejections/purge')).status).toBe(200);
  });

  it('is for admins only', async () => {
    expect((await a.as({ sub: 'dr', roles: ['clinician'] }).post('/api/rejections/purge')).status).toBe(403);
    expect((await a.request.post('/api/rejections/purge?days=0')).status).toBe(400);
  });

  it('is refused when REJECTION_RETENTION_DAYS is never', async () => {
    const keep = await createTestArchive({ rejectionRetentionDays: undefined });
    try {
      const res = await keep.request.post('/api/rejections/purge');
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('PurgeDisabled');
    } finally {
      await keep.close();
    }
  });

  it('leaves instances that are not rejected alone whatever their age', async () => {
    const live = syntheticInstance();
    await purgeRejected({ ...a.deps, log: () => undefined }, newCaller(ADMIN, { protocol: 'cli', command: 'test' }), 0, new Date(Date.now() + 86_400_000));
    expect((await stow([live.bytes])).status).toBe(200);
    await purgeRejected({ ...a.deps, log: () => undefined }, newCaller(ADMIN, { protocol: 'cli', command: 'test' }), 0, new Date(Date.now() + 86_400_000));
    expect(await a.deps.db('instances').where({ sop_instance_uid: live.sopInstanceUid })).toHaveLength(1);
  });
});
