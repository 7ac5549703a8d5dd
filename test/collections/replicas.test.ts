import supertest from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { newCaller, visible, visibleText, type Caller } from '../../server/access.js';
import { createApp } from '../../server/app.js';
import { connect, type Db } from '../../server/db/knex.js';
import { Research } from '../../server/deid/research.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { binaryParser, createTestArchive, multipartBody, sample, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// Collections across replicas (two apps on one database, each with its own
// memory), pseudonyms per project, grants to users and roles, the `deid`
// claim of a token, and the rule's statements for calls not confined to a
// collection.

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
};
const STEWARD: Who = { sub: 'steward-1', roles: ['steward'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
const mr = syntheticInstance({ Modality: 'MR', BurnedInAnnotation: 'NO' });

let a: TestArchive;
let replica: supertest.Agent;
let replicaDb: Db;
let interval: number;

const text = (r: { body: Buffer }) => r.body.toString('latin1');
const json = (r: { body: Buffer }) => JSON.parse(text(r));
const read = (app: supertest.Agent | ReturnType<typeof supertest>, auth: string, url: string) =>
  app.get(url).set('Authorization', `Bearer ${auth}`).set('Accept', 'application/dicom+json').buffer(true).parse(binaryParser);

async function createCollection(body: Record<string, unknown>): Promise<{ id: string; project: string }> {
  const r = await a.as(STEWARD).post('/api/collections').send(body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

async function tokenOf(id: string): Promise<{ id: string; token: string }> {
  const r = await a.as(STEWARD).post(`/api/collections/${id}/shares`).send({ expiresInSeconds: 3600 });
  expect(r.status).toBe(201);
  return r.body;
}

const studyUids = (r: { body: Buffer }) => json(r).map((s: Record<string, { Value: string[] }>) => s['0020000D'].Value[0]);

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID });
  const m = multipartBody([sample('CT_small.dcm'), mr.bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  replicaDb = connect(a.dbUrl, 2);
  const research = new Research(DEID, DEID.key);
  replica = supertest.agent(createApp({ ...a.deps, db: replicaDb, research, presenter: research.presenter }).callback());
  interval = a.deps.config.auth.revocationCheckSeconds * 1000;
});
afterAll(async () => {
  await replicaDb?.destroy();
  await a?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('two replicas', () => {
  it('show the same pseudonyms, and each resolves the ones the other showed', async () => {
    const c = await createCollection({ name: 'replicated', studies: [CT.study] });
    const { token } = await tokenOf(c.id);
    const root = `/collections/${c.id}/dicom-web`;
    const here = studyUids(await read(a.anonymous, token, `${root}/studies`));
    const there = studyUids(await read(replica, token, `${root}/studies`));
    expect(here).toHaveLength(1);
    expect(there).toEqual(here);
    expect(here[0]).not.toBe(CT.study);
    const [series] = json(await read(a.anonymous, token, `${root}/studies/${here[0]}/series`));
    const seriesUid = series['0020000E'].Value[0];
    expect((await read(replica, token, `${root}/studies/${here[0]}/series/${seriesUid}/metadata`)).status).toBe(200);
  });

  it('a share revoked on one is refused there at once, and on the other within AUTH_REVOCATION_CHECK_SECONDS', async () => {
    const c = await createCollection({ name: 'revoked across replicas', studies: [CT.study] });
    const s = await tokenOf(c.id);
    const url = `/collections/${c.id}/dicom-web/studies`;
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    expect((await read(replica, s.token, url)).status).toBe(200);
    expect((await a.as(STEWARD).delete(`/api/collections/${c.id}/shares/${s.id}`)).status).toBe(200);
    expect((await read(a.anonymous, s.token, url)).status).toBe(401);
    vi.setSystemTime(Date.now() + interval + 1);
    const r = await read(replica, s.token, url);
    expect(r.status).toBe(401);
    expect(text(r)).toContain('revoked');
  });
});

describe('pseudonyms per project', () => {
  it('differ between collections of their own projects, and agree within one project', async () => {
    const first = await createCollection({ name: 'first', studies: [CT.study] });
    const second = await createCollection({ name: 'second', studies: [CT.study] });
    const trialA = await createCollection({ name: 'trial a', studies: [CT.study], project: 'trial-7' });
    const trialB = await createCollection({ name: 'trial b', studies: [CT.study], project: 'trial-7' });
    const uidIn = async (id: string) => studyUids(await read(a.anonymous, (await tokenOf(id)).token, `/collections/${id}/dicom-web/studies`))[0];
    expect(await uidIn(first.id)).not.toBe(await uidIn(second.id));
    expect(await uidIn(trialA.id)).toBe(await uidIn(trialB.id));
    expect(await uidIn(trialA.id)).toBe(a.deps.research!.viewNamed({ project: 'trial-7', profile: 'modified-dates' }).deidentifier.uid(CT.study));
  });
});

describe('grants', () => {
  const CLINICIAN: Who = { sub: 'dr-grant', roles: ['clinician'] };

  it('a user granted by name reads the collection de-identified; another finds no collection', async () => {
    const c = await createCollection({ name: 'granted', studies: [CT.study] });
    const url = `/collections/${c.id}/dicom-web/studies?includefield=all`;
    expect((await read(a.anonymous, a.token(CLINICIAN), url)).status).toBe(404);
    expect((await a.as(STEWARD).post(`/api/collections/${c.id}/grants`).send({ user: CLINICIAN.sub })).status).toBe(201);
    const r = await read(a.anonymous, a.token(CLINICIAN), url);
    expect(r.status).toBe(200);
    expect(text(r)).not.toContain('CompressedSamples');
    expect(text(r)).not.toContain(CT.study);
    expect((await read(a.anonymous, a.token({ sub: 'dr-other', roles: ['clinician'] }), url)).status).toBe(404);
  });

  it('a role grant admits every holder of the role, until it is withdrawn', async () => {
    const c = await createCollection({ name: 'by role', studies: [CT.study] });
    const url = `/collections/${c.id}/dicom-web/studies`;
    const g = await a.as(STEWARD).post(`/api/collections/${c.id}/grants`).send({ role: 'researcher' });
    expect(g.status).toBe(201);
    const researcher = a.token({ sub: 'res-9', roles: ['researcher'] });
    expect(studyUids(await read(a.anonymous, researcher, url))).toHaveLength(1);
    expect((await a.as(STEWARD).delete(`/api/collections/${c.id}/grants/${g.body.id}`)).status).toBe(204);
    expect((await read(a.anonymous, researcher, url)).status).toBe(404);
  });

  it('a grant needs a user or a role', async () => {
    const c = await createCollection({ name: 'bad grant' });
    const r = await a.as(STEWARD).post(`/api/collections/${c.id}/grants`).send({ group: 'x' });
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/user.*role/);
  });
});

describe('the deid claim', () => {
  const sign = (deid: Record<string, unknown>, roles: ('clinician' | 'researcher')[]) =>
    a.deps.tokens.sign({ sub: 'claimed', roles, clearances: [], deid } as never, 600);

  it('names the project and profile a clinician reads through, de-identified', async () => {
    const token = sign({ project: 'trial-9', profile: 'modified-dates,clean-descriptors' }, ['clinician']);
    const r = await read(a.anonymous, token, '/dicom-web/studies?includefield=all');
    expect(r.status).toBe(200);
    expect(text(r)).not.toContain('CompressedSamples');
    const expected = a.deps.research!.viewNamed({ project: 'trial-9', profile: 'modified-dates,clean-descriptors' }).deidentifier.uid(CT.study);
    expect(studyUids(r)).toContain(expected);
  });

  it("names another project for a researcher, whose role's profile it keeps", async () => {
    const r = await read(a.anonymous, sign({ project: 'trial-9' }, ['researcher']), '/dicom-web/studies');
    const expected = a.deps.research!.viewNamed({ project: 'trial-9', profile: 'modified-dates' }).deidentifier.uid(CT.study);
    expect(studyUids(r)).toContain(expected);
  });

  it('refuses a token whose claim names a profile Cairn does not know', async () => {
    const r = await read(a.anonymous, sign({ profile: 'keep-everything' }, ['clinician']), '/dicom-web/studies');
    expect(r.status).toBe(401);
    expect(text(r)).toContain('deid claim');
  });
});

describe('the rule for calls not confined to a collection', () => {
  const who = { sub: 'x', roles: ['clinician' as const], clearances: [] };
  const plain: Caller = newCaller(who, { protocol: 'cli', command: 'test' });
  const confined: Caller = newCaller(who, { protocol: 'cli', command: 'test' }, undefined, {
    collection: { id: '00000000-0000-4000-8000-000000000000', deid: { project: 'p', profile: 'basic' } },
  });

  it('reads no collection table and binds no collection', () => {
    const path = { study: 'st', series: 'se', instance: 'i' };
    expect(visibleText(path, 1, plain)).toBe(visibleText(path, 1));
    expect(visibleText(path, 1, plain)).not.toContain('collection_members');
    expect(visible(a.deps.db, path, plain).toSQL().sql).not.toContain('collection_members');
    expect(visible(a.deps.db, path, confined).toSQL().sql).toContain('collection_members');
  });
});
