import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRows } from '../server/db/build-rows.js';
import { batchIndexer } from '../server/db/batch-index.js';
import type { IndexOutcome } from '../server/db/write.js';
import { parseInstance } from '../server/dicom/parse.js';
import { createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance } from './synthetic.js';

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

const LIMITS = { bulkThreshold: 1024, maxHeaderBytes: 1 << 20, maxSequenceDepth: 16, maxDataElements: 100_000 };

/** Index rows of a synthetic instance, as the store path builds them. */
async function rowsOf(opts: Parameters<typeof syntheticInstance>[0] = {}, blobKey = `instances/test/${Math.random()}.dcm`) {
  const inst = syntheticInstance(opts);
  const parsed = await parseInstance(Readable.from([inst.bytes]), LIMITS);
  return { inst, rows: buildRows(parsed, { blobKey, size: inst.bytes.length, sha256: `sha-${inst.sopInstanceUid}` }) };
}

type Rows = Awaited<ReturnType<typeof rowsOf>>['rows'];

/** Writes all rows while the indexer is corked, then uncorks: one batch. */
async function writeTogether(rows: Rows[]): Promise<IndexOutcome[]> {
  const indexer = batchIndexer(a.deps.db);
  indexer.cork();
  const outcomes = rows.map((r) => indexer.write(r.study, r.series, r.instance, false));
  indexer.uncork();
  return Promise.all(outcomes);
}

/** The transaction that wrote each instance row. */
async function writers(uids: string[]): Promise<string[]> {
  const rows: { sop_instance_uid: string; xmin: string }[] = await a.deps.db('instances').whereIn('sop_instance_uid', uids).select('sop_instance_uid', 'xmin');
  const byUid = new Map(rows.map((r) => [r.sop_instance_uid, r.xmin]));
  return uids.map((u) => byUid.get(u) ?? 'missing');
}

describe('batchIndexer', () => {
  it('writes the instances that waited while it was corked in one transaction, each with its change row', async () => {
    const study = syntheticInstance().studyUid;
    const series = [`${study}.1`, `${study}.2`];
    const built = await Promise.all([0, 1, 2, 3, 4].map((i) => rowsOf({ studyUid: study, seriesUid: series[i % 2] })));
    const outcomes = await writeTogether(built.map((b) => b.rows));
    expect(outcomes).toEqual(built.map(() => ({ kind: 'stored' })));
    const uids = built.map((b) => b.inst.sopInstanceUid);
    expect(new Set(await writers(uids)).size).toBe(1);
    expect(await a.deps.db('studies').where({ study_uid: study }).count({ n: '*' })).toEqual([{ n: 1 }]);
    expect(await a.deps.db('series').where({ study_uid: study }).count({ n: '*' })).toEqual([{ n: 2 }]);
    const changes: { sop_instance_uid: string }[] = await a.deps
      .db('changes')
      .where({ kind: 'stored' })
      .whereIn('sop_instance_uid', uids)
      .select('sop_instance_uid');
    expect(changes.map((c) => c.sop_instance_uid).sort()).toEqual([...uids].sort());
  });

  it('gives each instance of a batch its own outcome: stored, identical, conflicting, of a series elsewhere, rejected', async () => {
    const first = await rowsOf();
    const elsewhere = await rowsOf();
    expect(await writeTogether([first.rows, elsewhere.rows])).toEqual([{ kind: 'stored' }, { kind: 'stored' }]);
    const fresh = await rowsOf();
    const identical = await rowsOf({ studyUid: first.inst.studyUid, seriesUid: first.inst.seriesUid, sopInstanceUid: first.inst.sopInstanceUid });
    identical.rows.instance.sha256 = first.rows.instance.sha256;
    const conflicting = await rowsOf({ studyUid: first.inst.studyUid, seriesUid: first.inst.seriesUid, sopInstanceUid: first.inst.sopInstanceUid });
    conflicting.rows.instance.sha256 = 'other content';
    const moved = await rowsOf({ seriesUid: elsewhere.inst.seriesUid });
    const rejected = await rowsOf();
    await a.deps.db('rejections').insert({
      sop_instance_uid: rejected.inst.sopInstanceUid,
      study_uid: rejected.inst.studyUid,
      series_uid: rejected.inst.seriesUid,
      kos_instance_uid: '2.25.1',
      code_value: '113001',
      coding_scheme: 'DCM',
      code_meaning: 'Rejected for Quality Reasons',
    });
    const outcomes = await writeTogether([fresh.rows, identical.rows, conflicting.rows, moved.rows, rejected.rows]);
    expect(outcomes).toEqual([
      { kind: 'stored' },
      { kind: 'identical' },
      { kind: 'conflict' },
      { kind: 'series-elsewhere', studyUid: elsewhere.inst.studyUid },
      { kind: 'rejected' },
    ]);
    expect(await writers([fresh.inst.sopInstanceUid, moved.inst.sopInstanceUid, rejected.inst.sopInstanceUid])).toEqual([
      expect.not.stringMatching('missing'),
      'missing',
      'missing',
    ]);
  });

  it('writes each instance alone when one row fails the batch statement, so only that one fails', async () => {
    const built = await Promise.all([1, 2, 3].map((n) => rowsOf({ InstanceNumber: String(n) })));
    // A NOT VALID check constraint refuses new rows of instance number 2 only.
    await a.deps.db.raw('alter table instances add constraint refuse_two check (instance_number is distinct from 2) not valid');
    let outcomes: PromiseSettledResult<IndexOutcome>[];
    try {
      const indexer = batchIndexer(a.deps.db);
      indexer.cork();
      const pending = built.map((b) => indexer.write(b.rows.study, b.rows.series, b.rows.instance, false));
      indexer.uncork();
      outcomes = await Promise.allSettled(pending);
    } finally {
      await a.deps.db.raw('alter table instances drop constraint refuse_two');
    }
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await writers(built.map((b) => b.inst.sopInstanceUid))).toEqual([
      expect.not.stringMatching('missing'),
      'missing',
      expect.not.stringMatching('missing'),
    ]);
  });

  it('writes a row that waited while corked after a short while, without waiting for the uncork', async () => {
    const [first, second] = [await rowsOf(), await rowsOf()];
    const indexer = batchIndexer(a.deps.db);
    indexer.cork();
    try {
      const one = indexer.write(first.rows.study, first.rows.series, first.rows.instance, false);
      const two = indexer.write(second.rows.study, second.rows.series, second.rows.instance, false);
      // Still corked: a slow client's long request must not keep stored instances out of the index.
      expect(await Promise.all([one, two])).toEqual([{ kind: 'stored' }, { kind: 'stored' }]);
      const [w1, w2] = await writers([first.inst.sopInstanceUid, second.inst.sopInstanceUid]);
      expect(w1).not.toBe('missing');
      expect(w2).toBe(w1);
    } finally {
      indexer.uncork();
    }
  });

  it('writes at once, without waiting for more, when it is not corked', async () => {
    const { rows, inst } = await rowsOf();
    const indexer = batchIndexer(a.deps.db);
    expect(await indexer.write(rows.study, rows.series, rows.instance, false)).toEqual({ kind: 'stored' });
    expect(await writers([inst.sopInstanceUid])).toEqual([expect.not.stringMatching('missing')]);
  });
});

describe('STOW-RS index writes', () => {
  it('commits the instances of one request together', async () => {
    const study = syntheticInstance().studyUid;
    const parts = Array.from({ length: 12 }, () => syntheticInstance({ studyUid: study, seriesUid: `${study}.1` }));
    const { body, contentType } = multipartBody(parts.map((p) => p.bytes));
    const res = await a.request.post('/dicom-web/studies').set('Content-Type', contentType).set('Accept', 'application/dicom+json').send(body);
    expect(res.status).toBe(200);
    expect(new Set(await writers(parts.map((p) => p.sopInstanceUid))).size).toBe(1);
  });
});
