import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDeidViews } from '../../server/deid/settings.js';
import { binaryParser, createTestArchive, multipartBody, sample, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// WADO-URI (PS3.18 §9) and the Capabilities transaction (PS3.18 §8.9) below a
// collection's own root, through its scope and profile like the rest of it:
// members only, de-identified, with no original identifier in any byte.

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
/** Values of the CT sample that identify its patient, its visit or its place. */
const IDENTIFYING = ['CompressedSamples', 'JFK IMAGING', '20040119', CT.study, CT.series, CT.instance, '1CT1'];
const STEWARD: Who = { sub: 'steward-wado', roles: ['steward'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };
const other = syntheticInstance({ Modality: 'MR', BurnedInAnnotation: 'NO' });

let a: TestArchive;
let id: string;
let token: string;
/** The CT instance's UIDs as the collection shows them. */
let shown: { study: string; series: string; instance: string };

const text = (r: { body: Buffer }) => r.body.toString('latin1');
const get = (url: string, auth = token, accept?: string) => {
  const req = a.anonymous.get(url).set('Authorization', `Bearer ${auth}`);
  if (accept) req.set('Accept', accept);
  return req.buffer(true).parse(binaryParser);
};
const wado = (uids: { study: string; series: string; instance: string }, extra = '') =>
  `/collections/${id}/wado?requestType=WADO&studyUID=${uids.study}&seriesUID=${uids.series}&objectUID=${uids.instance}${extra}`;
const noOriginal = (r: { headers: Record<string, unknown>; body: Buffer }) => {
  for (const v of IDENTIFYING) expect(`${JSON.stringify(r.headers)}\n${text(r)}`, v).not.toContain(v);
};

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID });
  const m = multipartBody([sample('CT_small.dcm'), other.bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  id = (
    await a
      .as(STEWARD)
      .post('/api/collections')
      .send({ name: 'wado', studies: [CT.study] })
  ).body.id;
  token = (await a.as(STEWARD).post(`/api/collections/${id}/shares`).send({ expiresInSeconds: 3600 })).body.token;
  const root = `/collections/${id}/dicom-web`;
  const [instance] = JSON.parse(text(await get(`${root}/instances`, token, 'application/dicom+json')));
  shown = { study: instance['0020000D'].Value[0], series: instance['0020000E'].Value[0], instance: instance['00080018'].Value[0] };
  expect(shown.study).not.toBe(CT.study);
});
afterAll(async () => {
  await a?.close();
});

describe("WADO-URI below a collection's root", () => {
  it('a share token gets the instance de-identified, under its pseudonymous UIDs', async () => {
    const r = await get(wado(shown, '&contentType=application%2Fdicom'));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/dicom/);
    expect(text(r).slice(128, 132)).toBe('DICM');
    expect(text(r)).toContain(shown.instance);
    noOriginal(r);
  });

  it('a share token gets a rendered JPEG by default', async () => {
    const r = await get(wado(shown));
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/jpeg');
    expect(r.body.subarray(0, 2).toString('hex')).toBe('ffd8');
    noOriginal(r);
  });

  it('a non-member instance is 404, by its original UIDs or a member study with them', async () => {
    const r = await get(wado({ study: other.studyUid, series: other.seriesUid, instance: other.sopInstanceUid }));
    expect(r.status).toBe(404);
    noOriginal(r);
    // The member's original UIDs name nothing in the collection's view.
    expect((await get(wado(CT, '&contentType=application%2Fdicom'))).status).toBe(404);
    // An administrator reading through the collection's root is held to its members too.
    expect(
      (await get(wado({ study: other.studyUid, series: other.seriesUid, instance: other.sopInstanceUid }), a.token({ sub: 'adm', roles: ['admin'] }))).status,
    ).toBe(404);
  });

  it('needs a credential the collection admits: none is 401, a stranger 404', async () => {
    expect((await a.anonymous.get(wado(shown))).status).toBe(401);
    expect((await get(wado(shown), a.token({ sub: 'dr-stranger', roles: ['clinician'] }))).status).toBe(404);
  });

  it('is audited with the collection named', async () => {
    expect((await get(wado(shown))).status).toBe(200);
    const events = (await a.request.get('/api/audit?action=retrieve&limit=1000')).body.events as { path: string; detail: Record<string, unknown> }[];
    const mine = events.filter((e) => e.path?.startsWith(`/collections/${id}/wado`));
    expect(mine.length).toBeGreaterThan(0);
    for (const e of mine) expect(e.detail.collection).toBe(id);
  });
});

describe("the capabilities of a collection's root", () => {
  const options = (auth?: string, accept = 'application/vnd.sun.wadl+xml') => {
    const req = a.anonymous.options(`/collections/${id}/dicom-web`).set('Accept', accept);
    if (auth) req.set('Authorization', `Bearer ${auth}`);
    return req.buffer(true).parse(binaryParser);
  };

  it('describe its reads at its own base, and nothing it refuses', async () => {
    const r = await options(token);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/vnd\.sun\.wadl\+xml/);
    const wadl = text(r);
    expect(wadl).toMatch(new RegExp(`<resources base="[^"]*/collections/${id}/dicom-web">`));
    expect(wadl).toContain('<resource path="studies">');
    expect(wadl).toContain('id="RetrieveMetadata"');
    expect(wadl).not.toContain('name="POST"');
    expect(wadl).not.toContain('name="DELETE"');
    expect(wadl).not.toContain('path="changes"');
  });

  it('in JSON as well', async () => {
    const r = await options(token, 'application/json');
    expect(r.status).toBe(200);
    const caps = JSON.parse(text(r));
    expect(caps.base).toMatch(new RegExp(`/collections/${id}/dicom-web$`));
    expect(caps.resources.flatMap((x: { methods: { method: string }[] }) => x.methods.map((m) => m.method))).not.toContain('POST');
  });

  it('are for those the collection admits: none is 401, a stranger 404', async () => {
    expect((await options()).status).toBe(401);
    expect((await options(a.token({ sub: 'dr-stranger', roles: ['clinician'] }))).status).toBe(404);
  });
});
