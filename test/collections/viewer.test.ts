import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    expect((await a.anonymous.post(`/collections/${id}/share-session`).set('Authorization', `Bearer ${s.token}`)).status).toBe(401);
  });
});
