import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestArchive, multipartBody, sample, type TestArchive, type Who } from '../helpers.js';
import { parseDeidViews } from '../../server/deid/settings.js';

// A viewer per collection (the bundled OHIF configured with the collection's
// DICOMweb root), and a share link that opens it in a browser: the token
// posted once becomes a cookie of the collection's paths, refused like the
// token once the share is revoked.

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-collection-viewer-'));
const INDEX =
  '<!doctype html><html><head><script rel="preload" as="script" src="/app-config.js"></script><script src="/app-config.js"></script></head><body></body></html>';
fs.writeFileSync(path.join(work, 'index.html'), INDEX);

const CT_STUDY = '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322';
const STEWARD: Who = { sub: 'steward-1', roles: ['steward'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };

let a: TestArchive;
let id: string;

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID, viewerDir: work });
  const m = multipartBody([sample('CT_small.dcm')]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  id = (
    await a
      .as(STEWARD)
      .post('/api/collections')
      .send({ name: 'viewed', studies: [CT_STUDY] })
  ).body.id;
});
afterAll(async () => {
  await a?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe("a collection's viewer", () => {
  it("is OHIF's index page with the collection's configuration script", async () => {
    const r = await a.anonymous.get(`/collections/${id}/viewer?StudyInstanceUIDs=1.2.3`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.text).toContain(`src="/collections/${id}/app-config.js"`);
    expect(r.text).not.toContain('src="/app-config.js"');
  });

  it("configures OHIF with the collection's DICOMweb root and its routes below the collection", async () => {
    const r = await a.anonymous.get(`/collections/${id}/app-config.js`);
    expect(r.status).toBe(200);
    expect(r.text).toContain(`"qidoRoot": "${r.request.url.replace(/\/collections\/.*$/, '')}/collections/${id}/dicom-web"`);
    expect(r.text).toContain(`"routerBasename": "/collections/${id}"`);
    expect(r.text).toContain('var archive = false;');
    const archive = await a.anonymous.get('/app-config.js');
    expect(archive.text).toContain('"routerBasename": "/"');
    expect(archive.text).toContain('var archive = true;');
  });

  it("leaves a path below the collection's DICOMweb root to that root", async () => {
    const r = await a.request.get(`/collections/${id}/dicom-web/nothing-here`);
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).not.toMatch(/html/);
  });

  it('the share answer carries a link whose token is in the fragment', async () => {
    const r = await a.as(STEWARD).post(`/api/collections/${id}/shares`).send({ expiresInSeconds: 600 });
    expect(r.body.link).toMatch(new RegExp(`/collections/${id}/open#cairnshare_`));
    expect(r.body.viewerUrl).toMatch(new RegExp(`/collections/${id}/$`));
    const page = await a.anonymous.get(`/collections/${id}/open`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`/collections/${id}/share-session`);
  });
});

describe('a share link in a browser', () => {
  it('turns the token into a cookie of the collection, refused once the share is revoked', async () => {
    const s = (await a.as(STEWARD).post(`/api/collections/${id}/shares`).send({ expiresInSeconds: 600 })).body;
    const opened = await a.anonymous.post(`/collections/${id}/share-session`).set('Authorization', `Bearer ${s.token}`);
    expect(opened.status).toBe(204);
    const cookie = opened.headers['set-cookie'][0] as string;
    expect(cookie).toMatch(new RegExp(`path=/collections/${id}/`));
    expect(cookie).toMatch(/httponly/i);
    const pair = cookie.split(';')[0];
    const url = `/collections/${id}/dicom-web/studies`;
    const ok = await a.anonymous.get(url).set('Cookie', pair).set('Accept', 'application/dicom+json');
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(1);
    expect((await a.anonymous.get('/dicom-web/studies').set('Cookie', pair)).status).toBe(401);
    expect((await a.as(STEWARD).delete(`/api/collections/${id}/shares/${s.id}`)).status).toBe(200);
    expect((await a.anonymous.get(url).set('Cookie', pair)).status).toBe(401);
    expect((await a.anonymous.post(`/collections/${id}/share-session`).set('Authorization', `Bearer ${s.token}`)).status).toBe(410);
  });
});

describe('an ended share in the viewer', () => {
  /** What the CT sample and the collection hold that its holder must not be shown by these pages. */
  const PRIVATE = ['CompressedSamples', 'JFK IMAGING', CT_STUDY, 'viewed'];

  async function openShare(): Promise<{ share: { id: string; token: string; expiresAt: string }; cookie: string }> {
    const share = (await a.as(STEWARD).post(`/api/collections/${id}/shares`).send({ expiresInSeconds: 600 })).body;
    const opened = await a.anonymous.post(`/collections/${id}/share-session`).set('Authorization', `Bearer ${share.token}`);
    expect(opened.status).toBe(204);
    return { share, cookie: (opened.headers['set-cookie'][0] as string).split(';')[0] };
  }
  const ended = (cookie: string, accept = 'text/html') =>
    a.anonymous
      .get(`/collections/${id}/share-ended?next=${encodeURIComponent(`/collections/${id}/viewer?StudyInstanceUIDs=1.2.3`)}`)
      .set('Cookie', cookie)
      .set('Accept', accept);

  afterEach(() => {
    vi.useRealTimers();
  });

  it("the collection's viewer sends a refused browser to the share-ended page, the archive's to the login page", async () => {
    expect((await a.anonymous.get(`/collections/${id}/app-config.js`)).text).toContain(`'/collections/${id}/share-ended' + '?next='`);
    expect((await a.anonymous.get('/app-config.js')).text).toContain(`'/login' + '?next='`);
  });

  it('a revoked share: a page saying so and whom to ask, 410, naming nothing of the collection', async () => {
    const { share, cookie } = await openShare();
    expect((await a.as(STEWARD).delete(`/api/collections/${id}/shares/${share.id}`)).status).toBe(200);
    const r = await ended(cookie);
    expect(r.status).toBe(410);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.text).toMatch(/was revoked at \d{4}-\d\d-\d\dT/);
    expect(r.text).toContain(`Ask ${STEWARD.sub}, who shared it, for a new link.`);
    for (const p of PRIVATE) expect(r.text).not.toContain(p);
  });

  it('an expired share: JSON for an API client, 410, with when it ended and whom to ask', async () => {
    const { share, cookie } = await openShare();
    vi.useFakeTimers({ toFake: ['Date'], now: new Date(share.expiresAt).getTime() + 1000 });
    const r = await ended(cookie, 'application/json');
    expect(r.status).toBe(410);
    expect(r.body).toMatchObject({ error: 'ShareExpired', ended: 'expired', endedAt: share.expiresAt, contact: STEWARD.sub });
    expect(r.body.message).toMatch(/expired at/);
    expect(JSON.stringify(r.body)).not.toContain(CT_STUDY);
    const html = await ended(cookie);
    expect(html.status).toBe(410);
    expect(html.text).toContain('This share link expired at');
  });

  it("the DICOMweb root answers an ended share's reads 401 invalid_token, its body saying it ended", async () => {
    const { share, cookie } = await openShare();
    expect((await a.as(STEWARD).delete(`/api/collections/${id}/shares/${share.id}`)).status).toBe(200);
    const r = await a.anonymous.get(`/collections/${id}/dicom-web/studies`).set('Cookie', cookie).set('Accept', 'application/dicom+json');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'ShareRevoked', contact: STEWARD.sub });
  });

  it('the share cookie outlives the share, so that a browser can be told it ended', async () => {
    const { share } = await openShare();
    const opened = await a.anonymous.post(`/collections/${id}/share-session`).set('Authorization', `Bearer ${share.token}`);
    const expires = /expires=([^;]+)/i.exec(opened.headers['set-cookie'][0] as string)?.[1];
    expect(new Date(expires!).getTime()).toBeGreaterThan(new Date(share.expiresAt).getTime());
  });

  it('a share still open goes back to the viewer path it came from, and never elsewhere', async () => {
    const { cookie } = await openShare();
    const r = await ended(cookie);
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe(`/collections/${id}/viewer?StudyInstanceUIDs=1.2.3`);
    for (const next of [
      '//evil.example/x',
      'https://evil.example/',
      `/collections/${id}/../../api/collections`,
      '/collections/00000000-0000-0000-0000-000000000000/',
    ]) {
      const away = await a.anonymous
        .get(`/collections/${id}/share-ended?next=${encodeURIComponent(next)}`)
        .set('Cookie', cookie)
        .set('Accept', 'text/html');
      expect(away.headers.location).toBe(`/collections/${id}/`);
    }
  });

  it('without a share token, a browser goes to the login page and an API client gets 401', async () => {
    const r = await a.anonymous.get(`/collections/${id}/share-ended?next=${encodeURIComponent(`/collections/${id}/viewer`)}`).set('Accept', 'text/html');
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe(`/login?next=${encodeURIComponent(`/collections/${id}/viewer`)}`);
    const api = await a.anonymous.get(`/collections/${id}/share-ended`).set('Accept', 'application/json');
    expect(api.status).toBe(401);
    expect(api.body.error).toBe('AuthenticationRequired');
  });

  it('an ended share link opened again says it ended: 410 from the share session', async () => {
    const { share } = await openShare();
    expect((await a.as(STEWARD).delete(`/api/collections/${id}/shares/${share.id}`)).status).toBe(200);
    const r = await a.anonymous.post(`/collections/${id}/share-session`).set('Authorization', `Bearer ${share.token}`);
    expect(r.status).toBe(410);
    expect(r.body).toMatchObject({ error: 'ShareRevoked', contact: STEWARD.sub });
  });
});
