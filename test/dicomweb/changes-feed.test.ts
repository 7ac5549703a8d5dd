import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, multipartBody, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';
import { keyObject } from './kos.js';

// The change feed over HTTP: every write appears once, in order, to a caller
// who may see its study; a hidden study's changes are absent; a waiting read
// wakes up when a change arrives; a change still being committed holds back
// the ones after it.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

interface FeedChange {
  seq: number;
  at: string;
  kind: string;
  studyUid: string;
  seriesUid?: string;
  sopInstanceUid?: string;
}

const CLINICIAN: Who = { sub: 'pipeline', roles: ['clinician'] };
const CLEARED: Who = { sub: 'pipeline-vip', roles: ['clinician'], clearances: ['vip'] };

async function stow(parts: Buffer[]) {
  const { body, contentType } = multipartBody(parts);
  const res = await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body);
  expect(res.status).toBe(200);
}

async function head(): Promise<number> {
  return (await a.request.get('/dicom-web/changes?since=0&limit=1000')).body.next;
}

async function feed(who: Who, since: number, extra = ''): Promise<{ changes: FeedChange[]; next: number }> {
  const res = await a.as(who).get(`/dicom-web/changes?since=${since}${extra}`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.body;
}

describe('GET /dicom-web/changes', () => {
  it('lists stores, deletes, relabels and rejections in order, with the UIDs they touched', async () => {
    const since = await head();
    const x = syntheticInstance();
    const y = syntheticInstance({ studyUid: x.studyUid, seriesUid: x.seriesUid });
    await stow([x.bytes, y.bytes]);
    expect((await a.request.delete(`/dicom-web/studies/${x.studyUid}/series/${x.seriesUid}/instances/${y.sopInstanceUid}`)).status).toBe(204);
    expect((await a.request.put(`/api/studies/${x.studyUid}/labels`).send({ labels: ['other'] })).status).toBe(200);
    expect((await a.request.put(`/api/studies/${x.studyUid}/labels`).send({ labels: [] })).status).toBe(200);
    const kos = keyObject(x.studyUid, [x]);
    await stow([kos.bytes]);
    const { changes, next } = await feed(CLINICIAN, since);
    // The two parts of one request commit in either order.
    expect(
      changes
        .slice(0, 2)
        .map((c) => [c.kind, c.sopInstanceUid])
        .sort(),
    ).toEqual(
      [
        ['stored', x.sopInstanceUid],
        ['stored', y.sopInstanceUid],
      ].sort(),
    );
    expect(changes.slice(2).map((c) => [c.kind, c.sopInstanceUid ?? null])).toEqual([
      ['deleted', y.sopInstanceUid],
      ['relabelled', x.sopInstanceUid],
      ['relabelled', x.sopInstanceUid],
      ['stored', kos.sopInstanceUid],
      ['rejected', x.sopInstanceUid],
    ]);
    expect(changes.every((c) => c.studyUid === x.studyUid)).toBe(true);
    expect(changes[0].seriesUid).toBe(x.seriesUid);
    expect(new Date(changes[0].at).getTime()).not.toBeNaN();
    expect(changes.map((c) => c.seq)).toEqual([...changes.map((c) => c.seq)].sort((p, q) => p - q));
    expect(next).toBe(changes[changes.length - 1].seq);
  });

  it('pages with limit and next, each change exactly once', async () => {
    const since = await head();
    const study = uid();
    const parts = Array.from({ length: 5 }, () => syntheticInstance({ studyUid: study }));
    await stow(parts.map((p) => p.bytes));
    const seen: string[] = [];
    let at = since;
    for (let i = 0; i < 5; i++) {
      const page = await feed(CLINICIAN, at, '&limit=2');
      seen.push(...page.changes.map((c) => c.sopInstanceUid as string));
      at = page.next;
      if (!page.changes.length) break;
    }
    // The parts of one request commit in any order; each appears once.
    expect(seen).toHaveLength(5);
    expect([...seen].sort()).toEqual(parts.map((p) => p.sopInstanceUid).sort());
  });

  it('leaves out the changes of a study the caller may not see, deletions included, and shows them to one who may', async () => {
    const since = await head();
    const open = syntheticInstance();
    const vip = syntheticInstance();
    await stow([open.bytes]);
    await stow([vip.bytes]);
    expect((await a.request.put(`/api/studies/${vip.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
    expect((await a.request.delete(`/dicom-web/studies/${vip.studyUid}`).set('X-Break-Glass', 'purging a test study of the archive')).status).toBe(204);
    const plain = await feed(CLINICIAN, since);
    expect(plain.changes.map((c) => c.studyUid)).toEqual([open.studyUid]);
    const cleared = await feed(CLEARED, since);
    // The store of the vip study happened before it was labelled, and the study is gone: only its deletion is left to follow.
    expect(cleared.changes.map((c) => [c.kind, c.studyUid])).toEqual([
      ['stored', open.studyUid],
      ['deleted', vip.studyUid],
    ]);
    // The hidden changes are passed over, not waited for.
    expect(plain.next).toBe(cleared.next);
  });

  it('wakes a waiting read when a change arrives', async () => {
    const since = await head();
    const x = syntheticInstance();
    const waiting = a
      .as(CLINICIAN)
      .get(`/dicom-web/changes?since=${since}&wait=30`)
      .then((r) => r);
    await new Promise((r) => setTimeout(r, 400));
    await stow([x.bytes]);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body.changes.map((c: FeedChange) => c.sopInstanceUid)).toEqual([x.sopInstanceUid]);
  });

  it('answers an empty page with next unchanged when nothing arrives while it waits', async () => {
    const since = await head();
    const page = await feed(CLINICIAN, since, '&wait=1');
    expect(page).toEqual({ changes: [], next: since });
  });

  it('never passes a change still being committed: the ones after it wait for it', async () => {
    const first = syntheticInstance();
    await stow([first.bytes]);
    const since = await head();
    const trx = await a.deps.db.transaction();
    try {
      await trx.raw(`insert into changes (kind, study_uid) values ('relabelled', ?)`, [first.studyUid]);
      const later = syntheticInstance();
      await stow([later.bytes]);
      expect((await feed(ADMIN_WHO, since)).changes).toEqual([]);
      await trx.commit();
      const page = await feed(ADMIN_WHO, since);
      expect(page.changes.map((c) => c.kind)).toEqual(['relabelled', 'stored']);
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
  });

  it('refuses bad parameters with 400 and a JSON body saying which', async () => {
    for (const q of ['since=-1', 'since=abc', 'limit=0', 'limit=1001', 'wait=61', 'sinse=3']) {
      const res = await a.as(CLINICIAN).get(`/dicom-web/changes?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.message, q).toMatch(new RegExp(q.split('=')[0]));
    }
  });

  it('needs the search action', async () => {
    expect((await a.anonymous.get('/dicom-web/changes')).status).toBe(401);
    expect((await a.as({ sub: 'modality', roles: ['uploader'] }).get('/dicom-web/changes')).status).toBe(403);
  });
});

const ADMIN_WHO: Who = { sub: 'test-admin', roles: ['admin'] };
