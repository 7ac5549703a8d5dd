import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, multipartBody, type TestArchive, type Who } from './helpers.js';
import { syntheticInstance, uid } from './synthetic.js';
import { keyObject } from './dicomweb/kos.js';
import { parseDeidViews } from '../server/deid/settings.js';

// GET /api/changefeed and /api/changefeed/latest: one entry per change of
// one instance, in sequence order, with the instance's state now and its
// metadata as WADO-RS sends it; scoped by the caller's access.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive({
    duplicatePolicy: 'overwrite',
    labelRules: [{ label: 'secret', level: 'study', when: [{ tag: '00081030', test: ['SECRET'] }] }],
  });
});
afterAll(async () => {
  await a?.close();
});

interface Entry {
  Sequence: number;
  Action: string;
  Timestamp: string;
  State: string;
  StudyInstanceUid: string;
  SeriesInstanceUid: string;
  SopInstanceUid: string;
  Metadata?: Record<string, { vr: string; Value?: unknown[] }>;
}

const CLINICIAN: Who = { sub: 'mirror', roles: ['clinician'] };

async function stow(parts: Buffer[]) {
  const { body, contentType } = multipartBody(parts);
  const res = await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
  expect(res.status).toBe(200);
}

async function head(): Promise<number> {
  const r = await a.deps.db('changes').max<{ max: number | null }[]>('seq as max').first();
  return Number(r?.max ?? 0);
}

async function feed(who: Who | undefined, query: string): Promise<{ entries: Entry[]; link: string }> {
  const res = await (who ? a.as(who) : a.request).get(`/api/changefeed?${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return { entries: res.body, link: res.headers.link };
}

const brief = (entries: Entry[]) => entries.map((e) => [e.Action, e.SopInstanceUid, e.State]);

describe('GET /api/changefeed', () => {
  it('lists create, update, delete, reject and label entries per instance, each with its state now', async () => {
    const since = await head();
    const x = syntheticInstance();
    const y = syntheticInstance({ studyUid: x.studyUid, seriesUid: x.seriesUid });
    const z = syntheticInstance({ studyUid: x.studyUid, seriesUid: x.seriesUid });
    await stow([x.bytes]);
    await stow([y.bytes]);
    await stow([z.bytes]);
    await stow([syntheticInstance({ studyUid: x.studyUid, seriesUid: x.seriesUid, sopInstanceUid: x.sopInstanceUid, InstanceNumber: '7' }).bytes]);
    expect((await a.request.delete(`/dicom-web/studies/${x.studyUid}/series/${x.seriesUid}/instances/${y.sopInstanceUid}`)).status).toBe(204);
    const kos = keyObject(x.studyUid, [z]);
    await stow([kos.bytes]);
    expect((await a.request.put(`/api/studies/${x.studyUid}/series/${x.seriesUid}/labels`).send({ labels: ['photo'] })).status).toBe(200);
    expect((await a.request.put(`/api/studies/${x.studyUid}/series/${x.seriesUid}/labels`).send({ labels: [] })).status).toBe(200);
    const { entries } = await feed(undefined, `offset=${since}&includeMetadata=false`);
    expect(brief(entries)).toEqual([
      ['create', x.sopInstanceUid, 'replaced'],
      ['create', y.sopInstanceUid, 'deleted'],
      ['create', z.sopInstanceUid, 'rejected'],
      ['update', x.sopInstanceUid, 'current'],
      ['delete', y.sopInstanceUid, 'deleted'],
      ['create', kos.sopInstanceUid, 'current'],
      ['reject', z.sopInstanceUid, 'rejected'],
      // One per instance of the series at the time, in instance number order: z (rejected, still there), then x (now number 7).
      ['label', z.sopInstanceUid, 'rejected'],
      ['label', x.sopInstanceUid, 'current'],
      ['label', z.sopInstanceUid, 'rejected'],
      ['label', x.sopInstanceUid, 'current'],
    ]);
    expect(entries.every((e) => e.StudyInstanceUid === x.studyUid)).toBe(true);
    expect(entries[0].SeriesInstanceUid).toBe(x.seriesUid);
    expect(entries.map((e) => e.Sequence)).toEqual([...entries.map((e) => e.Sequence)].sort((p, q) => p - q));
    expect(new Set(entries.map((e) => e.Sequence)).size).toBe(entries.length);
    expect(Date.parse(entries[0].Timestamp)).not.toBeNaN();
    expect(entries.every((e) => e.Metadata === undefined)).toBe(true);
  });

  it('includes the metadata WADO-RS sends for an instance the caller sees now, by default, and for nothing else', async () => {
    const since = await head();
    const x = syntheticInstance();
    const gone = syntheticInstance({ studyUid: x.studyUid, seriesUid: x.seriesUid });
    await stow([x.bytes, gone.bytes]);
    expect((await a.request.delete(`/dicom-web/studies/${x.studyUid}/series/${x.seriesUid}/instances/${gone.sopInstanceUid}`)).status).toBe(204);
    const { entries } = await feed(CLINICIAN, `offset=${since}`);
    const wado = await a
      .as(CLINICIAN)
      .get(`/dicom-web/studies/${x.studyUid}/series/${x.seriesUid}/instances/${x.sopInstanceUid}/metadata`)
      .set('Accept', 'application/dicom+json');
    const created = entries.find((e) => e.SopInstanceUid === x.sopInstanceUid);
    // Each supertest request reaches the app from its own port: the BulkDataURIs differ in that alone.
    const origin = (v: unknown) => JSON.stringify(v).replace(/http:\/\/127\.0\.0\.1:\d+/g, 'ORIGIN');
    expect(origin(created?.Metadata)).toBe(origin(wado.body[0]));
    expect(origin(created?.Metadata)).toContain('"BulkDataURI":"ORIGIN/dicom-web/studies/');
    expect(created?.Metadata?.['00080018'].Value).toEqual([x.sopInstanceUid]);
    for (const e of entries.filter((e) => e.SopInstanceUid === gone.sopInstanceUid)) expect(e.Metadata).toBeUndefined();
  });

  it('pages by offset (the last Sequence read) and limit, each entry once, with a Link to the next page', async () => {
    const since = await head();
    const study = uid();
    const parts = Array.from({ length: 5 }, () => syntheticInstance({ studyUid: study }));
    await stow(parts.map((p) => p.bytes));
    const seen: string[] = [];
    let query = `offset=${since}&limit=2&includeMetadata=false`;
    for (let i = 0; i < 6; i++) {
      const page = await feed(CLINICIAN, query);
      seen.push(...page.entries.map((e) => e.SopInstanceUid));
      if (!page.entries.length) break;
      expect(page.entries.length).toBeLessThanOrEqual(2);
      expect(page.link).toMatch(/^<\/api\/changefeed\?.*offset=\d+.*>; rel="next"$/);
      query = page.link.slice(page.link.indexOf('?') + 1, page.link.indexOf('>'));
      expect(new URLSearchParams(query).get('offset')).toBe(String(page.entries.at(-1)?.Sequence));
    }
    expect([...seen].sort()).toEqual(parts.map((p) => p.sopInstanceUid).sort());
  });

  it('keeps to the time window of startTime and endTime', async () => {
    const x = syntheticInstance();
    await stow([x.bytes]);
    const after = new Date(Date.now() + 5);
    await new Promise((r) => setTimeout(r, 20));
    const y = syntheticInstance();
    await stow([y.bytes]);
    const later = await feed(CLINICIAN, `startTime=${after.toISOString()}&includeMetadata=false`);
    expect(later.entries.map((e) => e.SopInstanceUid)).toContain(y.sopInstanceUid);
    expect(later.entries.map((e) => e.SopInstanceUid)).not.toContain(x.sopInstanceUid);
    const earlier = await feed(CLINICIAN, `endTime=${after.toISOString()}&includeMetadata=false&limit=1000`);
    expect(earlier.entries.map((e) => e.SopInstanceUid)).toContain(x.sopInstanceUid);
    expect(earlier.entries.map((e) => e.SopInstanceUid)).not.toContain(y.sopInstanceUid);
  });

  it('leaves out every event of a study the caller may not see', async () => {
    const since = await head();
    const secret = syntheticInstance({ StudyDescription: 'SECRET', InstanceNumber: '1' });
    const again = syntheticInstance({ studyUid: secret.studyUid, seriesUid: secret.seriesUid, StudyDescription: 'SECRET', InstanceNumber: '2' });
    const open = syntheticInstance();
    await stow([secret.bytes]);
    await stow([again.bytes]);
    await stow([open.bytes]);
    expect((await a.request.put(`/api/studies/${secret.studyUid}/labels`).send({ labels: ['secret', 'other'] })).status).toBe(200);
    expect(
      (
        await a.request
          .delete(`/dicom-web/studies/${secret.studyUid}/series/${secret.seriesUid}/instances/${again.sopInstanceUid}`)
          .set('X-Break-Glass', 'removing a test instance for good')
      ).status,
    ).toBe(204);
    const plain = await feed(CLINICIAN, `offset=${since}&includeMetadata=false`);
    expect(plain.entries.map((e) => e.StudyInstanceUid)).toEqual([open.studyUid]);
    const cleared = await feed({ sub: 'cleared', roles: ['clinician'], clearances: ['secret', 'other'] }, `offset=${since}&includeMetadata=false`);
    expect(brief(cleared.entries)).toEqual([
      ['create', secret.sopInstanceUid, 'current'],
      ['create', again.sopInstanceUid, 'deleted'],
      ['create', open.sopInstanceUid, 'current'],
      ['label', secret.sopInstanceUid, 'current'],
      ['label', again.sopInstanceUid, 'deleted'],
      ['delete', again.sopInstanceUid, 'deleted'],
    ]);
  });

  it('tells a caller a relabel withdrew an instance from its view, as deleted, and gives it back with the next one', async () => {
    const since = await head();
    const x = syntheticInstance();
    await stow([x.bytes]);
    const before = await feed(CLINICIAN, `offset=${since}&includeMetadata=false`);
    expect(brief(before.entries)).toEqual([['create', x.sopInstanceUid, 'current']]);
    const at = before.entries[0].Sequence;
    expect((await a.request.put(`/api/studies/${x.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
    const hidden = await feed(CLINICIAN, `offset=${at}`);
    expect(brief(hidden.entries)).toEqual([['label', x.sopInstanceUid, 'deleted']]);
    expect(hidden.entries[0].Metadata).toBeUndefined();
    expect((await a.request.put(`/api/studies/${x.studyUid}/labels`).send({ labels: [] })).status).toBe(200);
    const back = await feed(CLINICIAN, `offset=${hidden.entries[0].Sequence}`);
    expect(brief(back.entries)).toEqual([['label', x.sopInstanceUid, 'current']]);
    expect(back.entries[0].Metadata?.['00080018'].Value).toEqual([x.sopInstanceUid]);
  });

  it('reads past a run of changes hidden from the caller instead of answering an empty page', async () => {
    const since = await head();
    const hidden = Array.from({ length: 30 }, () => syntheticInstance({ StudyDescription: 'SECRET' }));
    await stow(hidden.map((h) => h.bytes));
    const open = syntheticInstance();
    await stow([open.bytes]);
    // Ten changes looked at per entry a read may return: a limit of 1 looks at 10 rows a read.
    const page = await feed(CLINICIAN, `offset=${since}&limit=1&includeMetadata=false`);
    expect(page.entries.map((e) => e.SopInstanceUid)).toEqual([open.sopInstanceUid]);
  });

  it('refuses bad parameters with 400 and a JSON body saying which', async () => {
    for (const q of [
      'offset=-1',
      'offset=x',
      'limit=0',
      'limit=1001',
      'includeMetadata=yes',
      'startTime=yesterday',
      'endTime=2026-13-01',
      'since=3',
      'offset=1&offset=2',
    ]) {
      const res = await a.as(CLINICIAN).get(`/api/changefeed?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.message, q).toMatch(new RegExp(q.split('=')[0]));
    }
    const backwards = await a.as(CLINICIAN).get('/api/changefeed?startTime=2026-12-03T10:00:00Z&endTime=2026-12-03T09:00:00Z');
    expect(backwards.status).toBe(400);
    expect(backwards.body.message).toMatch(/startTime/);
  });

  it('needs the search action', async () => {
    expect((await a.anonymous.get('/api/changefeed')).status).toBe(401);
    expect((await a.as({ sub: 'modality', roles: ['uploader'] }).get('/api/changefeed')).status).toBe(403);
    expect((await a.as({ sub: 'modality', roles: ['uploader'] }).get('/api/changefeed/latest')).status).toBe(403);
  });
});

describe('GET /api/changefeed/latest', () => {
  it('answers the newest entry the caller may follow, not a newer hidden one', async () => {
    const x = syntheticInstance();
    await stow([x.bytes]);
    const hidden = syntheticInstance({ StudyDescription: 'SECRET' });
    await stow([hidden.bytes]);
    const res = await a.as(CLINICIAN).get('/api/changefeed/latest');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ Action: 'create', SopInstanceUid: x.sopInstanceUid, State: 'current' });
    expect(res.body.Metadata['00080018'].Value).toEqual([x.sopInstanceUid]);
    const admin = await a.as({ sub: 'cleared', roles: ['admin'], clearances: ['secret'] }).get('/api/changefeed/latest?includeMetadata=false');
    expect(admin.body).toMatchObject({ SopInstanceUid: hidden.sopInstanceUid });
    expect(admin.body.Metadata).toBeUndefined();
    const page = await feed(CLINICIAN, `offset=${res.body.Sequence}`);
    expect(page.entries).toEqual([]);
  });

  it('refuses an unknown parameter', async () => {
    const res = await a.as(CLINICIAN).get('/api/changefeed/latest?offset=3');
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/offset/);
  });
});

describe('the change feed and de-identified views', () => {
  it('is refused to a caller of a de-identified view, whose answers never name original UIDs', async () => {
    const deid = await createTestArchive({
      deid: { key: 'a-test-deid-key-that-is-long-enough-0123', views: parseDeidViews('researcher=modified-dates', undefined) },
    });
    try {
      const x = syntheticInstance();
      const { body, contentType } = multipartBody([x.bytes]);
      expect((await deid.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
      for (const path of ['/api/changefeed', '/api/changefeed/latest', '/dicom-web/changes']) {
        const res = await deid.as({ sub: 'res-1', roles: ['researcher'] }).get(path);
        expect(res.status, path).toBe(403);
        expect(JSON.stringify(res.body)).not.toContain(x.sopInstanceUid);
        expect(res.body.message).toMatch(/de-identified/);
      }
      expect((await deid.as(CLINICIAN).get('/api/changefeed')).status).toBe(200);
      expect((await deid.as(CLINICIAN).get('/dicom-web/changes')).status).toBe(200);
    } finally {
      await deid.close();
    }
  });
});
