import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describedRoutes, WADL } from '../../server/dicomweb/capabilities.js';
import { dicomwebRouter } from '../../server/dicomweb/routes.js';
import { createTestArchive, multipartBody, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The Capabilities transaction (PS3.18 §8.9, Annex H): OPTIONS on the base
// URI describes every route of the table that answers, and every resource it
// describes answers.

let a: TestArchive;
const inst = syntheticInstance();
beforeAll(async () => {
  a = await createTestArchive();
  const { body, contentType } = multipartBody([inst.bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

async function description(): Promise<string> {
  const res = await a.anonymous
    .options('/dicom-web')
    .set('Accept', WADL)
    .buffer(true)
    .parse((r, cb) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => cb(null, text));
    });
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/vnd\.sun\.wadl\+xml/);
  return res.body as string;
}

/** [method, path] pairs the document describes. */
function described(doc: string): [string, string][] {
  const out: [string, string][] = [];
  for (const m of doc.matchAll(/<resource path="([^"]*)">([\s\S]*?)<\/resource>/g)) {
    for (const n of m[2].matchAll(/<method name="(\w+)"/g)) out.push([n[1], `/${m[1]}`]);
  }
  return out;
}

describe('OPTIONS /dicom-web', () => {
  it('answers a WADL document whose resources base is the service root', async () => {
    const doc = await description();
    expect(doc).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>/);
    expect(doc).toContain('<application xmlns="http://wadl.dev.java.net/2009/02">');
    expect(doc).toMatch(/<resources base="http:\/\/[^"]+\/dicom-web">/);
  });

  it('describes every route of the table that answers, and no other', async () => {
    const doc = described(await description());
    const table = dicomwebRouter(a.deps);
    const routes = describedRoutes(table).map((r) => [r.method, r.path]);
    expect(doc.sort()).toEqual(routes.sort());
    expect(routes.length).toBeGreaterThan(15);
    // Rendered images and thumbnails are offered at every level.
    expect(doc.filter(([, p]) => /\/rendered$/.test(p))).toHaveLength(4);
    expect(doc.filter(([, p]) => /\/thumbnail$/.test(p))).toHaveLength(4);
    for (const want of [
      ['POST', '/studies'],
      ['GET', '/studies/{studyUid}/series/{seriesUid}/instances/{sopInstanceUid}/frames/{frames}'],
      ['DELETE', '/studies/{studyUid}'],
      ['GET', '/changes'],
    ])
      expect(doc).toContainEqual(want);
  });

  it('names the media types and query parameters the handlers use', async () => {
    const doc = await description();
    expect(doc).toContain('<method name="POST" id="StoreInstances">');
    expect(doc).toContain('mediaType="multipart/related; type=&quot;application/dicom&quot;"');
    expect(doc).toContain('mediaType="multipart/related; type=&quot;application/dicom+json&quot;"');
    expect(doc).toContain('<param name="PatientName" style="query">');
    expect(doc).toContain('<param name="includefield" style="query" repeating="true">');
    expect(doc).toContain('mediaType="multipart/related; type=&quot;image/jp2&quot;"');
    expect(doc).toContain('<param name="wait" style="query"/>');
    expect(doc).toContain('<method name="GET" id="RetrieveRendered">');
    expect(doc).toContain('<param name="window" style="query"/>');
    expect(doc).toContain('mediaType="image/png"');
    expect(doc).toContain('<param name="studyUid" style="template" required="true"/>');
  });

  it('describes only resources that answer', async () => {
    const fill = (p: string) =>
      p
        .replace('{studyUid}', inst.studyUid)
        .replace('{seriesUid}', inst.seriesUid)
        .replace('{sopInstanceUid}', inst.sopInstanceUid)
        .replace('{frames}', '1')
        .replace('{tag}', '7FE00010');
    for (const [method, path] of described(await description())) {
      if (method !== 'GET') continue;
      const res = await a.request.get(`/dicom-web${fill(path)}`).set('Accept', '*/*');
      expect([200, 206], `${method} ${path}: ${res.status}`).toContain(res.status);
    }
  });

  it('refuses an Accept it cannot meet with 406', async () => {
    const res = await a.anonymous.options('/dicom-web').set('Accept', 'application/dicom+json');
    expect(res.status).toBe(406);
    expect(res.body.message).toMatch(/wadl/);
  });
});
