import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { binaryParser, createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance } from './synthetic.js';

// A WADO-RS read finds its rows and writes its audit row in one statement:
// one round trip to PostgreSQL, the row written before any data leaves, and
// one row per request unless the request ends otherwise than the row says.

let a: TestArchive;
const studyUid = syntheticInstance().studyUid;
const seriesUid = syntheticInstance().seriesUid;
const first = syntheticInstance({ studyUid, seriesUid, InstanceNumber: 1, frames: 2 });
const second = syntheticInstance({ studyUid, seriesUid, InstanceNumber: 2 });
const inst = (i = first) => `/dicom-web/studies/${studyUid}/series/${seriesUid}/instances/${i.sopInstanceUid}`;
const OCTETS = 'multipart/related; type="application/octet-stream"';

beforeAll(async () => {
  a = await createTestArchive();
  const { body, contentType } = multipartBody([first.bytes, second.bytes]);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

async function lastAuditId(): Promise<number> {
  const r = await a.deps.db('audit_events').max<{ max: number | null }[]>('id as max').first();
  return Number(r?.max ?? 0);
}

/** A request as a clinician, with the audit rows it left and the statements it sent to PostgreSQL. */
async function read(url: string, accept: string, headers: Record<string, string> = {}) {
  const before = await lastAuditId();
  const spy = vi.spyOn(pg.Client.prototype, 'query');
  let res: Awaited<ReturnType<ReturnType<TestArchive['as']>['get']>>;
  let statements: string[];
  try {
    res = await a
      .as({ sub: 'dr-read', roles: ['clinician'] })
      .get(url)
      .set({ Accept: accept, ...headers })
      .buffer(true)
      .parse(binaryParser);
  } finally {
    statements = spy.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text: string }).text));
    spy.mockRestore();
  }
  const rows = await a.deps.db('audit_events').where('id', '>', before).orderBy('id');
  return { res, rows, statements };
}

const audited = (statements: string[]) => statements.filter((s) => /insert into audit_events/i.test(s));

describe('a read of one instance and its audit row are one statement', () => {
  it.each([
    ['an instance', () => inst(), 'application/dicom; transfer-syntax=*'],
    ['a frame', () => `${inst()}/frames/2`, OCTETS],
    ['bulk data', () => `${inst()}/bulkdata/7FE00010`, 'application/octet-stream'],
    ['instance metadata', () => `${inst()}/metadata`, 'application/dicom+json'],
  ] as const)('%s: one row, written by the lookup itself', async (_what, url, accept) => {
    const { res, rows, statements } = await read(url(), accept);
    expect(res.status).toBe(200);
    const writes = audited(statements);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/from instances/);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      sub: 'dr-read',
      roles: ['clinician'],
      action: 'retrieve',
      method: 'GET',
      path: url(),
      status: 200,
      outcome: 'success',
      study_uids: [studyUid],
      series_uids: [seriesUid],
      instance_uids: [first.sopInstanceUid],
      break_glass: false,
      protocol: 'http',
    });
  });

  it.each([
    ['a series', () => `/dicom-web/studies/${studyUid}/series/${seriesUid}`, 'multipart/related; type="application/dicom"'],
    ['series metadata', () => `/dicom-web/studies/${studyUid}/series/${seriesUid}/metadata`, 'application/dicom+json'],
  ] as const)('%s: one row, written after the lookup of its many instances', async (_what, url, accept) => {
    const { res, rows, statements } = await read(url(), accept);
    expect(res.status).toBe(200);
    const writes = audited(statements);
    expect(writes).toHaveLength(1);
    expect(writes[0]).not.toMatch(/from instances/);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 200, outcome: 'success', study_uids: [studyUid], series_uids: [seriesUid] });
    expect(rows[0].instance_uids.length).toBeGreaterThanOrEqual(2);
  });

  it('the row keeps the query string, the break-glass reason and how the credentials came', async () => {
    const reason = 'trauma call, patient unconscious';
    const { res, rows } = await read(`${inst()}/metadata?includefield=all`, 'application/dicom+json', { 'X-Break-Glass': reason });
    expect(res.status).toBe(200);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ break_glass: true, reason, detail: { query: 'includefield=all', via: 'bearer' } });
  });

  it('a read that finds nothing writes its 404 row after, as any request', async () => {
    const { res, rows } = await read(`/dicom-web/studies/${studyUid}/series/${seriesUid}/instances/1.2.3.4/metadata`, 'application/dicom+json');
    expect(res.status).toBe(404);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 404, outcome: 'not-found', instance_uids: [], detail: { error: 'InstanceNotFound' } });
  });

  it('a bulk data read with a Range writes its row once the status is known', async () => {
    const { res, rows } = await read(`${inst()}/bulkdata/7FE00010`, 'application/octet-stream', { Range: 'bytes=0-3' });
    expect(res.status).toBe(206);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 206, outcome: 'success', instance_uids: [first.sopInstanceUid] });
  });
});

describe('a read that ends otherwise than its row says', () => {
  it('a frame the instance lacks: a second row with the 404, naming the first', async () => {
    const { res, rows } = await read(`${inst()}/frames/9`, OCTETS);
    expect(res.status).toBe(404);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ status: 200, outcome: 'success', instance_uids: [first.sopInstanceUid] });
    expect(rows[1]).toMatchObject({
      status: 404,
      outcome: 'not-found',
      instance_uids: [first.sopInstanceUid],
      detail: { error: 'FrameNotFound', supersedes: Number(rows[0].id) },
    });
  });

  it('a representation that cannot be made: a second row with the 406', async () => {
    const { res, rows } = await read(inst(), 'multipart/related; type="image/gif"');
    expect(res.status).toBe(406);
    expect(rows.map((r) => [r.status, r.outcome])).toEqual([
      [200, 'success'],
      [406, 'invalid'],
    ]);
    expect(rows[1].detail.supersedes).toBe(Number(rows[0].id));
  });

  it('a blob that cannot be read: a second row says the request failed, and no data is sent', async () => {
    const lost = syntheticInstance({ studyUid, seriesUid, InstanceNumber: 3 });
    const { body, contentType } = multipartBody([lost.bytes]);
    expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
    const { blob_key } = await a.deps.db('instances').where('sop_instance_uid', lost.sopInstanceUid).first();
    await a.deps.blobs.delete(blob_key);
    const { res, rows } = await read(inst(lost), 'application/dicom; transfer-syntax=*');
    expect(res.status).toBe(500);
    expect(rows.map((r) => [r.status, r.outcome])).toEqual([
      [200, 'success'],
      [500, 'error'],
    ]);
    expect(rows[1]).toMatchObject({ instance_uids: [lost.sopInstanceUid], detail: { supersedes: Number(rows[0].id) } });
  });

  it('when the row cannot be written, the read fails and its data is not sent', async () => {
    await a.deps.db.raw('alter table audit_events add constraint audit_refuses check (false) not valid');
    try {
      const { res } = await read(`${inst()}/frames/1`, OCTETS);
      expect(res.status).toBe(500);
      expect(res.body.toString()).toBe(JSON.stringify({ error: 'InternalError', message: 'internal error' }));
    } finally {
      await a.deps.db.raw('alter table audit_events drop constraint audit_refuses');
    }
  });
});

describe('a frame is read from its blob', () => {
  it('with one read at its offset, not a stream', async () => {
    const read = vi.spyOn(a.deps.blobs, 'read');
    const get = vi.spyOn(a.deps.blobs, 'get');
    try {
      const res = await a.request.get(`${inst()}/frames/2`).set('Accept', OCTETS).buffer(true).parse(binaryParser);
      expect(res.status).toBe(200);
      expect(res.body.includes(first.frameBytes[1])).toBe(true);
      expect(get).not.toHaveBeenCalled();
      expect(read).toHaveBeenCalledTimes(1);
      expect(read.mock.calls[0][3]).toBeGreaterThan(0);
    } finally {
      read.mockRestore();
      get.mockRestore();
    }
  });
});
