import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.js';
import { startCollectionGrower, type CollectionGrower } from '../../server/collections/grow.js';
import { connect, type Db } from '../../server/db/knex.js';
import { Research } from '../../server/deid/research.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { parseLabelRules } from '../../server/labels.js';
import { binaryParser, createTestArchive, multipartBody, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// A collection made from a QIDO query grows: studies stored after it was made
// that match its query join it, through whichever replica they were stored,
// evaluated as its maker saw the archive (label rules included); a study
// relabelled out of the maker's sight leaves; a frozen collection stays as
// it was made. Two apps on one database, each running its own runner.

const STEWARD: Who = { sub: 'steward-live', roles: ['steward'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
/** Studies of patient VIP-1 are labelled "vip" as they are stored: a steward without that clearance never sees them. */
const LABEL_RULES = parseLabelRules(JSON.stringify([{ label: 'vip', when: { PatientID: ['VIP-1'] } }]));
/** How long a study may take to join: a few polls of either runner. */
const BOUND_MS = 15_000;

let a: TestArchive;
let replica: supertest.Agent;
let replicaDb: Db;
let growers: CollectionGrower[] = [];

const json = (r: { body: Buffer }) => JSON.parse(r.body.toString('latin1'));

async function store(app: supertest.Agent, ...instances: { bytes: Buffer }[]): Promise<void> {
  const m = multipartBody(instances.map((i) => i.bytes));
  const r = await app
    .post('/dicom-web/studies')
    .set('Authorization', `Bearer ${a.token({ sub: 'uploader-live', roles: ['admin'] })}`)
    .set('Content-Type', m.contentType)
    .send(m.body);
  expect(r.status).toBe(200);
}

async function createCollection(body: Record<string, unknown>): Promise<{ id: string; live: boolean; query: string | null }> {
  const r = await a.as(STEWARD).post('/api/collections').send(body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

async function membersOf(app: supertest.Agent, id: string): Promise<string[]> {
  const r = await app.get(`/api/collections/${id}`).set('Authorization', `Bearer ${a.token(STEWARD)}`);
  expect(r.status).toBe(200);
  return r.body.members.studies;
}

/** Waits until `test` holds of the collection's members, as read through `app`, or the bound passes. */
async function until(app: supertest.Agent, id: string, test: (studies: string[]) => boolean): Promise<string[]> {
  const end = Date.now() + BOUND_MS;
  for (;;) {
    const studies = await membersOf(app, id);
    if (test(studies) || Date.now() > end) return studies;
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID, labelRules: LABEL_RULES });
  replicaDb = connect(a.dbUrl, 2);
  const research = new Research(DEID, DEID.key);
  const replicaDeps = { ...a.deps, db: replicaDb, research, presenter: research.presenter };
  replica = supertest.agent(createApp(replicaDeps).callback());
  growers = [
    startCollectionGrower(a.deps, { owner: 'replica-a', pollMs: 100, leaseSeconds: 5 }),
    startCollectionGrower(replicaDeps, { owner: 'replica-b', pollMs: 100, leaseSeconds: 5 }),
  ];
});
afterAll(async () => {
  await Promise.all(growers.map((g) => g.stop()));
  await replicaDb?.destroy();
  await a?.close();
});

describe('a live query collection', () => {
  it('is live by default, and keeps its query', async () => {
    const c = await createCollection({ name: 'live default', query: 'ModalitiesInStudy=OT' });
    expect(c.live).toBe(true);
    expect(c.query).toBe('ModalitiesInStudy=OT');
  });

  it('takes in a matching study stored later through the same replica, and one stored through another', async () => {
    const c = await createCollection({ name: 'PET cohort', query: 'ModalitiesInStudy=PT' });
    expect(await membersOf(a.request, c.id)).toEqual([]);
    const here = syntheticInstance({ Modality: 'PT', BurnedInAnnotation: 'NO' });
    const there = syntheticInstance({ Modality: 'PT', BurnedInAnnotation: 'NO' });
    const unrelated = syntheticInstance({ Modality: 'US', BurnedInAnnotation: 'NO' });
    await store(a.request, here, unrelated);
    await store(replica, there);
    const joined = await until(a.request, c.id, (s) => s.length === 2);
    expect(joined.sort()).toEqual([here.studyUid, there.studyUid].sort());
    // Each replica reads the same members, and serves them through the collection's root.
    expect((await membersOf(replica, c.id)).sort()).toEqual(joined);
    // Each join is audited as the maker's change of the collection, naming the study.
    const audited = await a.deps.db('audit_events').where({ action: 'collection-change' }).whereRaw("detail->>'collection' = ?", [c.id]);
    expect(audited.every((e) => e.sub === STEWARD.sub && e.detail.live === true)).toBe(true);
    expect(audited.flatMap((e) => e.study_uids).sort()).toEqual(joined);
    const share = await a.as(STEWARD).post(`/api/collections/${c.id}/shares`).send({ expiresInSeconds: 600 });
    const found = await replica
      .get(`/collections/${c.id}/dicom-web/studies`)
      .set('Authorization', `Bearer ${share.body.token}`)
      .set('Accept', 'application/dicom+json')
      .buffer(true)
      .parse(binaryParser);
    expect(found.status).toBe(200);
    expect(json(found)).toHaveLength(2);
  });

  it('never takes in a study labelled at ingest that its maker may not see', async () => {
    const c = await createCollection({ name: 'XA cohort', query: 'ModalitiesInStudy=XA' });
    const vip = syntheticInstance({ Modality: 'XA', PatientID: 'VIP-1', BurnedInAnnotation: 'NO' });
    const plain = syntheticInstance({ Modality: 'XA', PatientID: 'P-2', BurnedInAnnotation: 'NO' });
    await store(a.request, vip);
    await store(a.request, plain);
    // The plain study came after the labelled one: once it has joined, the runner has looked at both.
    expect(await until(a.request, c.id, (s) => s.includes(plain.studyUid))).toEqual([plain.studyUid]);
  });

  it('lets a study go once it is relabelled out of its maker sight, and not one named by UID', async () => {
    const named = syntheticInstance({ Modality: 'RF', BurnedInAnnotation: 'NO' });
    await store(a.request, named);
    const c = await createCollection({ name: 'RF cohort', query: 'ModalitiesInStudy=RF', studies: [named.studyUid] });
    const later = syntheticInstance({ Modality: 'RF', BurnedInAnnotation: 'NO' });
    await store(a.request, later);
    expect((await until(a.request, c.id, (s) => s.length === 2)).sort()).toEqual([named.studyUid, later.studyUid].sort());
    for (const s of [named, later]) expect((await a.request.put(`/api/studies/${s.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
    expect(await until(a.request, c.id, (s) => s.length === 1)).toEqual([named.studyUid]);
  });

  it('takes in a study labelled at ingest once its label is removed', async () => {
    const c = await createCollection({ name: 'MG cohort', query: 'ModalitiesInStudy=MG' });
    const vip = syntheticInstance({ Modality: 'MG', PatientID: 'VIP-1', BurnedInAnnotation: 'NO' });
    await store(a.request, vip);
    const marker = syntheticInstance({ Modality: 'MG', BurnedInAnnotation: 'NO' });
    await store(a.request, marker);
    expect(await until(a.request, c.id, (s) => s.includes(marker.studyUid))).toEqual([marker.studyUid]);
    // The label removed: the maker could see it now, so it matches.
    expect((await a.request.put(`/api/studies/${vip.studyUid}/labels`).send({ labels: [] })).status).toBe(200);
    expect((await until(a.request, c.id, (s) => s.length === 2)).sort()).toEqual([vip.studyUid, marker.studyUid].sort());
  });
});

describe('the lease on a live collection', () => {
  it('a replica that died holding it is replaced once its lease runs out', async () => {
    const c = await createCollection({ name: 'leased', query: 'ModalitiesInStudy=NM' });
    // A runner that took the collection and died: its lease runs for 2 s more, and nobody else works on it meanwhile.
    await a.deps
      .db('collections')
      .where({ id: c.id })
      .update({ lease_owner: 'replica-gone', lease_until: a.deps.db.raw("now() + interval '2 seconds'") });
    const nm = syntheticInstance({ Modality: 'NM', BurnedInAnnotation: 'NO' });
    await store(a.request, nm);
    await new Promise((r) => setTimeout(r, 500));
    expect(await membersOf(a.request, c.id)).toEqual([]);
    expect(await until(a.request, c.id, (s) => s.length === 1)).toEqual([nm.studyUid]);
    const row = await a.deps.db('collections').where({ id: c.id }).first('lease_owner');
    expect(['replica-a', 'replica-b']).toContain(row.lease_owner);
  });
});

describe('a frozen query collection', () => {
  it('made frozen, takes in nothing stored later', async () => {
    const frozen = await createCollection({ name: 'frozen', query: 'ModalitiesInStudy=DX', live: false });
    expect(frozen.live).toBe(false);
    const live = await createCollection({ name: 'live twin', query: 'ModalitiesInStudy=DX' });
    const dx = syntheticInstance({ Modality: 'DX', BurnedInAnnotation: 'NO' });
    await store(a.request, dx);
    expect(await until(a.request, live.id, (s) => s.length === 1)).toEqual([dx.studyUid]);
    expect(await membersOf(a.request, frozen.id)).toEqual([]);
  });

  it('frozen later by its steward, takes in nothing more, and cannot be made live again', async () => {
    const c = await createCollection({ name: 'freeze me', query: 'ModalitiesInStudy=CR' });
    const r = await a.as(STEWARD).patch(`/api/collections/${c.id}`).send({ live: false });
    expect(r.status).toBe(200);
    expect(r.body.live).toBe(false);
    const twin = await createCollection({ name: 'CR twin', query: 'ModalitiesInStudy=CR' });
    const cr = syntheticInstance({ Modality: 'CR', BurnedInAnnotation: 'NO' });
    await store(a.request, cr);
    expect(await until(a.request, twin.id, (s) => s.length === 1)).toEqual([cr.studyUid]);
    expect(await membersOf(a.request, c.id)).toEqual([]);
    const again = await a.as(STEWARD).patch(`/api/collections/${c.id}`).send({ live: true });
    expect(again.status).toBe(400);
    expect(again.body.message).toMatch(/frozen/);
  });

  it('live is refused without a query, and must be true or false', async () => {
    const r = await a.as(STEWARD).post('/api/collections').send({ name: 'x', live: true });
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/query/);
    const s = await a.as(STEWARD).post('/api/collections').send({ name: 'x', query: 'ModalitiesInStudy=CT', live: 'yes' });
    expect(s.status).toBe(400);
    expect(s.body.message).toMatch(/live/);
  });
});
