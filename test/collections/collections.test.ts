import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectionRouters } from '../../server/collections/routes.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { GUARD } from '../../server/http/guard.js';
import { binaryParser, createTestArchive, multipartBody, parseMultipart, sample, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// A steward makes a collection of studies, shares it with an outside
// institution by a token, and the token reads the collection's own DICOMweb
// root: its members only, de-identified by the collection's profile, with no
// original identifier in any byte; expiry and revocation refuse the next
// request; every access is audited with the collection named.

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
/** Values of the CT sample that identify its patient, its visit or its place. */
const IDENTIFYING = ['CompressedSamples', 'JFK IMAGING', '20040119', CT.study, CT.series, CT.instance, '1CT1'];

const STEWARD: Who = { sub: 'steward-1', roles: ['steward'] };
const CLINICIAN: Who = { sub: 'dr-1', roles: ['clinician'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };

const other = syntheticInstance({ Modality: 'MR', BurnedInAnnotation: 'NO' });
const labelled = syntheticInstance({ Modality: 'MR', BurnedInAnnotation: 'NO' });

let a: TestArchive;
const text = (r: { body: Buffer }) => r.body.toString('latin1');
const json = (r: { body: Buffer }) => JSON.parse(text(r));
const withToken = (token: string, url: string, accept = 'application/dicom+json') =>
  a.anonymous.get(url).set('Authorization', `Bearer ${token}`).set('Accept', accept).buffer(true).parse(binaryParser);

async function createCollection(body: Record<string, unknown>): Promise<{ id: string; dicomwebRoot: string; project: string }> {
  const r = await a.as(STEWARD).post('/api/collections').send(body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

async function shareOf(id: string, body: Record<string, unknown> = { expiresInSeconds: 3600 }): Promise<{ id: string; token: string }> {
  const r = await a.as(STEWARD).post(`/api/collections/${id}/shares`).send(body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID });
  const m = multipartBody([sample('CT_small.dcm'), other.bytes, labelled.bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  expect((await a.request.put(`/api/studies/${labelled.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

describe('managing collections', () => {
  it('a steward creates a collection from study UIDs, with a profile and its own project', async () => {
    const c = await createCollection({ name: 'CT cohort', studies: [CT.study], profile: 'modified-dates,clean-descriptors' });
    const r = await a.as(STEWARD).get(`/api/collections/${c.id}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      name: 'CT cohort',
      profile: 'modified-dates,clean-descriptors',
      project: `collection-${c.id}`,
      members: { studies: [CT.study] },
    });
    expect(r.body.dicomwebRoot).toMatch(new RegExp(`/collections/${c.id}/dicom-web$`));
  });

  it('a steward creates a collection from a QIDO query, resolved to the studies it can see now', async () => {
    const c = await createCollection({ name: 'MR cohort', query: 'ModalitiesInStudy=MR' });
    const r = await a.as(STEWARD).get(`/api/collections/${c.id}`);
    // The labelled MR study is hidden from a steward without the clearance.
    expect(r.body.members.studies).toEqual([other.studyUid]);
  });

  it('refuses a UID that names no study the steward can see, naming it', async () => {
    const r = await a
      .as(STEWARD)
      .post('/api/collections')
      .send({ name: 'x', studies: [labelled.studyUid] });
    expect(r.status).toBe(400);
    expect(r.body.code ?? r.body.error).toBeDefined();
    expect(JSON.stringify(r.body)).toContain(labelled.studyUid);
  });

  it('refuses an unknown profile option and a missing name with a 400 saying so', async () => {
    const bad = await a.as(STEWARD).post('/api/collections').send({ name: 'x', profile: 'modified-dates,keep-names' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('keep-names');
    const nameless = await a
      .as(STEWARD)
      .post('/api/collections')
      .send({ studies: [CT.study] });
    expect(nameless.status).toBe(400);
    expect(JSON.stringify(nameless.body)).toContain('name is required');
  });

  it('is for stewards and administrators only', async () => {
    expect((await a.as(CLINICIAN).get('/api/collections')).status).toBe(403);
    expect((await a.as(CLINICIAN).post('/api/collections').send({ name: 'x' })).status).toBe(403);
    expect((await a.request.get('/api/collections')).status).toBe(200);
    expect((await a.anonymous.get('/api/collections')).status).toBe(401);
  });

  it('adds and removes members', async () => {
    const c = await createCollection({ name: 'growing' });
    const added = await a
      .as(STEWARD)
      .post(`/api/collections/${c.id}/members`)
      .send({ series: [CT.series] });
    expect(added.status).toBe(200);
    expect(added.body.members.series).toEqual([{ studyUid: CT.study, seriesUid: CT.series }]);
    expect((await a.as(STEWARD).delete(`/api/collections/${c.id}/members/series/${CT.series}`)).status).toBe(204);
    expect((await a.as(STEWARD).delete(`/api/collections/${c.id}/members/series/${CT.series}`)).status).toBe(404);
    expect((await a.as(STEWARD).get(`/api/collections/${c.id}`)).body.members).toEqual({ studies: [], series: [] });
  });

  it("a changed profile applies from the next request through the collection's root", async () => {
    const c = await createCollection({ name: 'changing', studies: [CT.study] });
    const { token } = await shareOf(c.id);
    const url = `/collections/${c.id}/dicom-web/studies`;
    const uidOf = async () => json(await withToken(token, url))[0]['0020000D'].Value[0];
    expect(await uidOf()).not.toBe(CT.study);
    const r = await a.as(STEWARD).patch(`/api/collections/${c.id}`).send({ profile: 'modified-dates,retain-uids' });
    expect(r.status).toBe(200);
    expect(await uidOf()).toBe(CT.study);
    expect((await a.as(STEWARD).patch(`/api/collections/${c.id}`).send({ profile: 'no-such-option' })).status).toBe(400);
  });

  it('a share needs an expiry', async () => {
    const c = await createCollection({ name: 'no expiry', studies: [CT.study] });
    const r = await a.as(STEWARD).post(`/api/collections/${c.id}/shares`).send({ recipient: 'Partner Hospital' });
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/expiry/);
  });
});

describe("a share token reads the collection's DICOMweb root", () => {
  let c: { id: string; dicomwebRoot: string };
  let token: string;
  const root = () => `/collections/${c.id}/dicom-web`;

  beforeAll(async () => {
    c = await createCollection({ name: 'shared', studies: [CT.study], profile: 'modified-dates' });
    token = (await shareOf(c.id, { expiresInSeconds: 3600, recipient: 'Partner Hospital' })).token;
  });

  it('QIDO finds the member study only, de-identified, with no original identifier in any byte', async () => {
    const r = await withToken(token, `${root()}/studies?includefield=all`);
    expect(r.status).toBe(200);
    const studies = json(r);
    expect(studies).toHaveLength(1);
    for (const v of IDENTIFYING) expect(`${JSON.stringify(r.headers)}\n${text(r)}`, v).not.toContain(v);
    expect(studies[0]['00120062'].Value).toEqual(['YES']);
    expect(studies[0]['00081190'].Value[0]).toContain(`${root()}/studies/`);
  });

  it('WADO-RS metadata, instance and frames through pseudonymous UIDs carry no original identifier', async () => {
    const [study] = json(await withToken(token, `${root()}/studies`));
    const studyUid = study['0020000D'].Value[0];
    const [series] = json(await withToken(token, `${root()}/studies/${studyUid}/series`));
    const seriesUid = series['0020000E'].Value[0];
    const meta = await withToken(token, `${root()}/studies/${studyUid}/series/${seriesUid}/metadata`);
    expect(meta.status).toBe(200);
    const [m] = json(meta);
    const sop = m['00080018'].Value[0];
    expect(m['7FE00010'].BulkDataURI).toContain(`${root()}/studies/${studyUid}/series/${seriesUid}/instances/${sop}`);
    const instance = `${root()}/studies/${studyUid}/series/${seriesUid}/instances/${sop}`;
    const bytes = await withToken(token, instance, 'application/dicom');
    expect(bytes.status).toBe(200);
    const frames = await withToken(token, `${instance}/frames/1`, 'multipart/related; type="application/octet-stream"');
    expect(frames.status).toBe(200);
    expect(parseMultipart(frames.body, frames.headers['content-type'])[0].body.length).toBeGreaterThan(0);
    const thumbnail = await withToken(token, `${root()}/studies/${studyUid}/thumbnail`, 'image/jpeg');
    expect(thumbnail.status).toBe(200);
    for (const r of [meta, bytes, frames, thumbnail]) for (const v of IDENTIFYING) expect(`${JSON.stringify(r.headers)}\n${text(r)}`, v).not.toContain(v);
  });

  it.each([
    ['QIDO series', (st: string) => `/studies/${st}/series?includefield=all`, 'application/dicom+json'],
    ['QIDO instances', (st: string) => `/instances?includefield=all&StudyInstanceUID=${st}`, 'application/dicom+json'],
    ['study metadata', (st: string) => `/studies/${st}/metadata`, 'application/dicom+json'],
    ['instance metadata', (st: string, se: string, i: string) => `/studies/${st}/series/${se}/instances/${i}/metadata`, 'application/dicom+json'],
    ['study', (st: string) => `/studies/${st}`, 'multipart/related; type="application/dicom"'],
    ['series', (st: string, se: string) => `/studies/${st}/series/${se}`, 'multipart/related; type="application/dicom"'],
    [
      'pixel data as bulk data',
      (st: string, se: string, i: string) => `/studies/${st}/series/${se}/instances/${i}/bulkdata/7FE00010`,
      'multipart/related; type="application/octet-stream"',
    ],
    ['rendered instance', (st: string, se: string, i: string) => `/studies/${st}/series/${se}/instances/${i}/rendered`, 'image/jpeg'],
    ['rendered frame', (st: string, se: string, i: string) => `/studies/${st}/series/${se}/instances/${i}/frames/1/rendered`, 'image/png'],
    ['series thumbnail', (st: string, se: string) => `/studies/${st}/series/${se}/thumbnail`, 'image/jpeg'],
  ] as const)('%s: 200 with no original identifier in any byte of the answer or its headers', async (_what, path, accept) => {
    const [study] = json(await withToken(token, `${root()}/studies`));
    const st = study['0020000D'].Value[0];
    const [series] = json(await withToken(token, `${root()}/studies/${st}/series`));
    const se = series['0020000E'].Value[0];
    const [instance] = json(await withToken(token, `${root()}/studies/${st}/series/${se}/instances`));
    const i = instance['00080018'].Value[0];
    const r = await withToken(token, `${root()}${path(st, se, i)}`, accept);
    expect(r.status).toBe(200);
    for (const v of IDENTIFYING) expect(`${JSON.stringify(r.headers)}\n${text(r)}`, v).not.toContain(v);
  });

  it('a non-member study is 404 through the collection root, by its original or any UID', async () => {
    expect((await withToken(token, `${root()}/studies/${other.studyUid}/metadata`)).status).toBe(404);
    expect(json(await withToken(token, `${root()}/studies?StudyInstanceUID=${other.studyUid}`))).toEqual([]);
    expect(json(await withToken(token, `${root()}/series?Modality=MR`))).toEqual([]);
  });

  it('the token opens nothing outside its collection', async () => {
    expect((await withToken(token, '/dicom-web/studies')).status).toBe(401);
    const elsewhere = await createCollection({ name: 'elsewhere', studies: [other.studyUid] });
    expect((await withToken(token, `/collections/${elsewhere.id}/dicom-web/studies`)).status).toBe(404);
  });

  it('is read-only: no store and no delete through the collection root', async () => {
    const m = multipartBody([other.bytes]);
    const r = await a.anonymous.post(`${root()}/studies`).set('Authorization', `Bearer ${token}`).set('Content-Type', m.contentType).send(m.body);
    expect(r.status).toBe(405);
    expect((await a.request.delete(`${root()}/studies/${CT.study}`)).status).toBe(405);
  });

  it('every access is audited with the collection named', async () => {
    await withToken(token, `${root()}/studies`);
    const events = (await a.request.get('/api/audit?action=search&limit=1000')).body.events as { sub: string; detail: Record<string, unknown>; path: string }[];
    const mine = events.filter((e) => e.path?.startsWith(root()));
    expect(mine.length).toBeGreaterThan(0);
    for (const e of mine) expect(e.detail.collection).toBe(c.id);
    expect(mine.some((e) => e.sub.startsWith('share:') && e.detail.recipient === 'Partner Hospital')).toBe(true);
  });
});

describe('provenance', () => {
  it('names the collection an instance was read through, de-identified', async () => {
    const c = await createCollection({ name: 'provenance', studies: [CT.study] });
    const { token } = await shareOf(c.id);
    const root = `/collections/${c.id}/dicom-web`;
    const [study] = json(await withToken(token, `${root}/studies`));
    expect((await withToken(token, `${root}/studies/${study['0020000D'].Value[0]}/metadata`)).status).toBe(200);
    const r = await a.request.get(`/api/instances/${CT.instance}/provenance`);
    expect(r.status).toBe(200);
    const read = r.body.events.filter((e: { collection?: string }) => e.collection === c.id);
    expect(read.map((e: { action: string }) => e.action)).toContain('retrieve');
  });
});

describe('share expiry and revocation', () => {
  it('a revoked share is refused on the next request', async () => {
    const c = await createCollection({ name: 'to revoke', studies: [CT.study] });
    const s = await shareOf(c.id);
    const url = `/collections/${c.id}/dicom-web/studies`;
    expect((await withToken(s.token, url)).status).toBe(200);
    const revoked = await a.as(STEWARD).delete(`/api/collections/${c.id}/shares/${s.id}`);
    expect(revoked.status).toBe(200);
    const r = await withToken(s.token, url);
    expect(r.status).toBe(401);
    expect(text(r)).toContain('revoked');
  });

  it('an expired share is refused on the next request', async () => {
    const c = await createCollection({ name: 'to expire', studies: [CT.study] });
    const s = await shareOf(c.id, { expiresInSeconds: 1 });
    const url = `/collections/${c.id}/dicom-web/studies`;
    expect((await withToken(s.token, url)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const r = await withToken(s.token, url);
    expect(r.status).toBe(401);
    expect(text(r)).toContain('expired');
  });

  it('a removed collection refuses its share tokens on the next request', async () => {
    const c = await createCollection({ name: 'to remove', studies: [CT.study] });
    const s = await shareOf(c.id);
    const url = `/collections/${c.id}/dicom-web/studies`;
    expect((await withToken(s.token, url)).status).toBe(200);
    expect((await a.as(STEWARD).delete(`/api/collections/${c.id}`)).status).toBe(204);
    expect((await withToken(s.token, url)).status).toBe(401);
  });

  it('a forged token of a real share is refused', async () => {
    const c = await createCollection({ name: 'forged', studies: [CT.study] });
    const s = await shareOf(c.id);
    const forged = s.token.replace(/.$/, (ch) => (ch === '0' ? '1' : '0'));
    expect((await withToken(forged, `/collections/${c.id}/dicom-web/studies`)).status).toBe(401);
  });
});

describe('every route of a collection that touches patient data or collections has a guard', () => {
  it.each([
    ['management', 0],
    ['DICOMweb root', 1],
  ] as const)('%s router', (_name, index) => {
    const router = collectionRouters(a.deps)[index];
    const routes = router.stack.filter((layer) => layer.methods.length > 0);
    expect(routes.length).toBeGreaterThan(5);
    for (const layer of routes) {
      const fns = layer.stack as unknown as Record<symbol, unknown>[];
      const g = fns.findIndex((fn) => GUARD in fn);
      expect(g, `${layer.methods.join(',')} ${layer.path}`).toBeGreaterThanOrEqual(0);
      expect(g, `${layer.path}: the guard comes before the handler`).toBeLessThan(fns.length - 1);
    }
  });
});
