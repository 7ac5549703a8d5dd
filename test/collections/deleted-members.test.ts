import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { archiveContext, purgeRejected } from '../../server/archive.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { createTestArchive, multipartBody, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// A member row names a study or a series by UID. When that study or series is
// deleted (by an administrator, or by the purge of rejected data), its member
// rows go with it: a study stored again later under the same UID is not in
// any collection until a steward puts it there.

const STEWARD: Who = { sub: 'steward-del', roles: ['steward'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };

let a: TestArchive;

async function store(...instances: { bytes: Buffer }[]): Promise<void> {
  const m = multipartBody(instances.map((i) => i.bytes));
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
}

async function members(id: string): Promise<{ studies: string[]; series: { studyUid: string; seriesUid: string }[] }> {
  const r = await a.as(STEWARD).get(`/api/collections/${id}`);
  expect(r.status).toBe(200);
  return r.body.members;
}

async function collectionOf(body: Record<string, unknown>): Promise<string> {
  const r = await a
    .as(STEWARD)
    .post('/api/collections')
    .send({ name: 'members', ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID });
});
afterAll(async () => {
  await a?.close();
});

describe('members of deleted studies', () => {
  it('a deleted study leaves every collection, and does not come back when stored again', async () => {
    const x = syntheticInstance({ BurnedInAnnotation: 'NO' });
    const kept = syntheticInstance({ BurnedInAnnotation: 'NO' });
    await store(x, kept);
    const first = await collectionOf({ studies: [x.studyUid, kept.studyUid] });
    const second = await collectionOf({ studies: [x.studyUid] });
    expect((await a.request.delete(`/dicom-web/studies/${x.studyUid}`)).status).toBe(204);
    expect((await members(first)).studies).toEqual([kept.studyUid]);
    expect((await members(second)).studies).toEqual([]);
    await store(x);
    expect((await members(first)).studies).toEqual([kept.studyUid]);
  });

  it('a deleted series leaves as a series member; its study, a member as a whole, stays while it holds another series', async () => {
    const one = syntheticInstance({ BurnedInAnnotation: 'NO' });
    const other = syntheticInstance({ studyUid: one.studyUid, BurnedInAnnotation: 'NO' });
    await store(one, other);
    const bySeries = await collectionOf({ series: [one.seriesUid, other.seriesUid] });
    const byStudy = await collectionOf({ studies: [one.studyUid] });
    expect((await a.request.delete(`/dicom-web/studies/${one.studyUid}/series/${one.seriesUid}`)).status).toBe(204);
    expect((await members(bySeries)).series).toEqual([{ studyUid: one.studyUid, seriesUid: other.seriesUid }]);
    expect((await members(byStudy)).studies).toEqual([one.studyUid]);
  });

  it('a series purged after its rejection leaves too', async () => {
    const x = syntheticInstance({ BurnedInAnnotation: 'NO' });
    await store(x);
    const id = await collectionOf({ series: [x.seriesUid] });
    expect((await a.request.post(`/dicom-web/studies/${x.studyUid}/series/${x.seriesUid}/reject/113039^DCM`)).status).toBe(200);
    // Rejected but kept: still a member (an admin may restore it).
    expect((await members(id)).series).toEqual([{ studyUid: x.studyUid, seriesUid: x.seriesUid }]);
    const system = newCaller({ sub: 'cairn', roles: ['admin'], clearances: [] }, { protocol: 'cli', command: 'rejection-purge' });
    expect(await purgeRejected(archiveContext(a.deps), system, 0, new Date(Date.now() + 1000))).toBe(1);
    expect((await members(id)).series).toEqual([]);
  });
});
