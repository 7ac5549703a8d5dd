import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WADL } from '../../server/dicomweb/capabilities.js';
import { createTestArchive, type TestArchive } from '../helpers.js';

// The JSON form of the Capabilities Description (PS3.18 §8.9): the same
// resources, methods, parameters and media types as the WADL document, for
// clients that ask for application/json.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

// supertest types its parser with its own response type.
const text = (r: any, cb: (err: Error | null, body: string) => void) => {
  let t = '';
  r.setEncoding('utf8');
  r.on('data', (c: string) => (t += c));
  r.on('end', () => cb(null, t));
};

interface JsonMethod {
  method: string;
  id?: string;
  params: { name: string; style: string; options?: string[] }[];
  request: string[];
  response: string[];
}
interface JsonCapabilities {
  base: string;
  resources: { path: string; templateParams: string[]; methods: JsonMethod[] }[];
}

async function asJson(accept = 'application/json'): Promise<JsonCapabilities> {
  const res = await a.anonymous.options('/dicom-web').set('Accept', accept);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.body;
}

async function asWadl(): Promise<string> {
  const res = await a.anonymous.options('/dicom-web').set('Accept', WADL).buffer(true).parse(text);
  return res.body as string;
}

/** Each method of the WADL document as "METHOD path param,param… | media types". */
function wadlMethods(doc: string): string[] {
  const out: string[] = [];
  for (const r of doc.matchAll(/<resource path="([^"]*)">([\s\S]*?)<\/resource>/g)) {
    for (const m of r[2].matchAll(/<method name="(\w+)"[^>]*>([\s\S]*?)<\/method>/g)) {
      const params = [...m[2].matchAll(/<param name="([^"]+)"/g)].map((p) => p[1]);
      const types = [...m[2].matchAll(/mediaType="([^"]+)"/g)].map((t) => t[1].replace(/&quot;/g, '"'));
      out.push(`${m[1]} ${r[1]} ${params.join(',')} | ${types.join(',')}`);
    }
  }
  return out.sort();
}

function jsonMethods(caps: JsonCapabilities): string[] {
  return caps.resources
    .flatMap((r) => r.methods.map((m) => `${m.method} ${r.path} ${m.params.map((p) => p.name).join(',')} | ${[...m.request, ...m.response].join(',')}`))
    .sort();
}

describe('OPTIONS /dicom-web with Accept: application/json', () => {
  it('describes the same resources, methods, parameters and media types as the WADL document', async () => {
    const caps = await asJson();
    expect(caps.base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/dicom-web$/);
    expect(jsonMethods(caps)).toEqual(wadlMethods(await asWadl()));
    expect(caps.resources.length).toBeGreaterThan(20);
  });

  it('names each resource template parameter and method id', async () => {
    const caps = await asJson();
    const reject = caps.resources.find((r) => r.path === 'studies/{studyUid}/series/{seriesUid}/reject/{code}');
    expect(reject?.templateParams).toEqual(['studyUid', 'seriesUid', 'code']);
    expect(reject?.methods).toEqual([{ method: 'POST', id: 'Reject', params: [], request: [], response: ['application/json'] }]);
    const studies = caps.resources.find((r) => r.path === 'studies');
    const search = studies?.methods.find((m) => m.method === 'GET');
    expect(search?.id).toBe('SearchStudies');
    expect(search?.params.find((p) => p.name === 'fuzzymatching')?.options).toEqual(['false']);
  });

  it('follows the q-values of Accept between the two forms', async () => {
    const wadlFirst = await a.anonymous.options('/dicom-web').set('Accept', `application/json;q=0.5, ${WADL}`).buffer(true).parse(text);
    expect(wadlFirst.headers['content-type']).toMatch(/^application\/vnd\.sun\.wadl\+xml/);
    await asJson(`${WADL};q=0.4, application/json`);
    const any = await a.anonymous.options('/dicom-web').set('Accept', '*/*').buffer(true).parse(text);
    expect(any.headers['content-type']).toMatch(/^application\/vnd\.sun\.wadl\+xml/);
  });

  it('still refuses a media type it has neither form in with 406 naming both', async () => {
    const res = await a.anonymous.options('/dicom-web').set('Accept', 'text/html');
    expect(res.status).toBe(406);
    expect(res.body.message).toMatch(/wadl/);
    expect(res.body.message).toMatch(/application\/json/);
  });
});
