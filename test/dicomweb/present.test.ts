import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.js';
import type { DicomJson } from '../../server/dicom/json.js';
import type { AttributeSet, AttributeView, Presenter } from '../../server/present.js';
import { binaryParser, createTestArchive, multipartBody, sample, type TestArchive, type Who } from '../helpers.js';

// Every DICOM JSON attribute set leaving Cairn passes through the presenter
// of the app's dependencies (server/present.ts): a view that drops Patient's
// Name must take it out of QIDO results at every level and out of metadata.

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
const PATIENT_NAME = '00100010';
const RESEARCHER: Who = { sub: 'researcher-1', roles: ['researcher'] };

let a: TestArchive;
/** The sets the view was given, by kind. */
let seen: AttributeSet[] = [];

const withoutName: AttributeView = (attrs, set) => {
  seen.push(set);
  const { [PATIENT_NAME]: _, ...rest } = attrs;
  return rest;
};
// A view for the researcher only: the presenter chooses by caller.
const presenter: Presenter = (caller) => (caller.principal.sub === RESEARCHER.sub ? withoutName : undefined);

let viewing: ReturnType<typeof supertest>;
let identity: ReturnType<typeof supertest>;
const as = (app: ReturnType<typeof supertest>, who: Who) => (url: string) =>
  app
    .get(url)
    .set('Authorization', `Bearer ${a.token(who)}`)
    .buffer(true)
    .parse(binaryParser);

beforeAll(async () => {
  a = await createTestArchive();
  const m = multipartBody([sample('CT_small.dcm')]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  viewing = supertest(createApp({ ...a.deps, presenter }).callback());
  // A view that changes nothing still takes the parsed path: its output must match the text path's byte for byte.
  const same: AttributeView = (attrs: DicomJson) => attrs;
  identity = supertest(createApp({ ...a.deps, presenter: () => same }).callback());
});
afterAll(async () => {
  await a?.close();
});

const RESULTS = [
  ['QIDO studies', '/dicom-web/studies', 'study'],
  ['QIDO series', '/dicom-web/series', 'series'],
  ['QIDO instances', '/dicom-web/instances', 'instance'],
  ['QIDO instances with includefield=all', '/dicom-web/instances?includefield=all', 'instance'],
  ['study metadata', `/dicom-web/studies/${CT.study}/metadata`, 'metadata'],
  ['instance metadata', `/dicom-web/studies/${CT.study}/series/${CT.series}/instances/${CT.instance}/metadata`, 'metadata'],
] as const;

describe('attributes seam', () => {
  it.each(RESULTS)("%s: the view removes Patient's Name", async (_, url, set) => {
    seen = [];
    const res = await as(viewing, RESEARCHER)(url);
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString()) as DicomJson[];
    expect(body).toHaveLength(1);
    expect(body[0][PATIENT_NAME]).toBeUndefined();
    expect(body[0]['0020000D'].Value).toEqual([CT.study]);
    expect(seen).toEqual([set]);
  });

  it.each(RESULTS)('%s: a caller without a view gets the attributes as stored', async (_, url) => {
    seen = [];
    const res = await as(viewing, { roles: ['admin'] })(url);
    const body = JSON.parse(res.body.toString()) as DicomJson[];
    expect(body[0][PATIENT_NAME].Value).toEqual([{ Alphabetic: 'CompressedSamples^CT1' }]);
    expect(seen).toEqual([]);
  });

  it.each(RESULTS)('%s: a view that changes nothing sends the same bytes as the text path', async (_, url) => {
    const viewed = await as(identity, RESEARCHER)(url);
    const stored = await as(viewing, { roles: ['admin'] })(url);
    expect(viewed.status).toBe(200);
    // Each supertest request listens on a port of its own, which RetrieveURL and BulkDataURI name.
    const text = (body: Buffer) => body.toString().replace(/http:\/\/127\.0\.0\.1:\d+\//g, 'http://host/');
    expect(text(viewed.body)).toBe(text(stored.body));
  });

  it("gives a view BulkDataURIs under this server's base", async () => {
    let uri: string | undefined;
    const app = supertest(
      createApp({
        ...a.deps,
        presenter: () => (attrs) => {
          uri = attrs['7FE00010'].BulkDataURI;
          return attrs;
        },
      }).callback(),
    );
    await as(app, RESEARCHER)(`/dicom-web/studies/${CT.study}/metadata`);
    expect(uri).toMatch(
      new RegExp(`^http://127\\.0\\.0\\.1:\\d+/dicom-web/studies/${CT.study}/series/${CT.series}/instances/${CT.instance}/bulkdata/7FE00010$`),
    );
  });
});
