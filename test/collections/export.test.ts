import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDeidViews } from '../../server/deid/settings.js';
import { binaryParser, createTestArchive, multipartBody, sample, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// A collection exported whole: a zip of its members as its share token sees
// them through the collection's root (de-identified by its profile, labelled
// members left out), with a DICOMDIR that lists every file.

const CT = {
  study: '1.3.6.1.4.1.5962.1.2.1.20040119072730.12322',
  series: '1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322',
  instance: '1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322',
};
const IDENTIFYING = ['CompressedSamples', 'JFK IMAGING', CT.study, CT.series, CT.instance];
const STEWARD: Who = { sub: 'steward-1', roles: ['steward'], clearances: ['vip'] };
const DEID = { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) };

const labelled = syntheticInstance({ Modality: 'MR', BurnedInAnnotation: 'NO' });
const outside = syntheticInstance({ Modality: 'MR', BurnedInAnnotation: 'NO' });

let a: TestArchive;
let dir: string;
beforeAll(async () => {
  a = await createTestArchive({ deid: DEID });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-collection-zip-'));
  const m = multipartBody([sample('CT_small.dcm'), labelled.bytes, outside.bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  expect((await a.request.put(`/api/studies/${labelled.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
});
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await a?.close();
});

async function collectionWithShare(studies: string[]): Promise<{ id: string; token: string }> {
  const c = await a.as(STEWARD).post('/api/collections').send({ name: 'zip cohort', studies });
  expect(c.status, JSON.stringify(c.body)).toBe(201);
  const s = await a.as(STEWARD).post(`/api/collections/${c.body.id}/shares`).send({ expiresInSeconds: 3600 });
  expect(s.status).toBe(201);
  return { id: c.body.id, token: s.body.token };
}

const download = (id: string, token: string) =>
  a.anonymous.get(`/collections/${id}/export.zip`).set('Authorization', `Bearer ${token}`).buffer(true).parse(binaryParser);

describe('a collection exported as a zip', () => {
  it('holds its visible members de-identified, with a DICOMDIR listing every file', async () => {
    // The steward is cleared for the labelled study and adds it; the share token is not cleared.
    const { id, token } = await collectionWithShare([CT.study, labelled.studyUid]);
    const res = await download(id, token);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    const zip = path.join(dir, `${id}.zip`);
    fs.writeFileSync(zip, res.body);
    const out = path.join(dir, id);
    execFileSync('unzip', ['-q', '-o', zip, '-d', out]);
    const files = execFileSync('find', [out, '-type', 'f']).toString().trim().split('\n');
    // One CT instance and the DICOMDIR: the labelled member is hidden from a share token, which has no clearance.
    expect(files.map((f) => path.basename(f)).sort()).toEqual(['DICOMDIR', 'I0000001']);
    for (const f of files) {
      const bytes = fs.readFileSync(f).toString('latin1');
      for (const v of IDENTIFYING) expect(bytes, `${path.basename(f)} ${v}`).not.toContain(v);
    }
    const dump = execFileSync('dcmdump', [path.join(out, 'DICOMDIR')]).toString();
    expect(dump).toContain('DICOM\\P0000001\\S0000001\\E0000001\\I0000001');
  });

  it('is refused to a token of another collection, and is 404 when nothing in it may be seen', async () => {
    const first = await collectionWithShare([CT.study]);
    const second = await collectionWithShare([outside.studyUid]);
    expect((await download(first.id, second.token)).status).toBe(404);
    await a.request.delete(`/dicom-web/studies/${outside.studyUid}`);
    const gone = await download(second.id, second.token);
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.body.toString('utf8')).error).toBe('NothingToExport');
  });

  it('is audited as an export naming the collection', async () => {
    const { id, token } = await collectionWithShare([CT.study]);
    expect((await download(id, token)).status).toBe(200);
    const row = await a.deps.db('audit_events').where({ action: 'export' }).whereRaw("detail->>'collection' = ?", [id]).first();
    expect(row?.detail, JSON.stringify(row?.detail)).toMatchObject({ collection: id, export: { format: 'zip', files: 1 } });
  });
});
