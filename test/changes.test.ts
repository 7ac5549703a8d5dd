import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../server/access.js';
import { deleteFromArchive, relabel, storeInstance, type ArchiveContext } from '../server/archive.js';
import { ADMIN, createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance, uid } from './synthetic.js';

// The change sequence: every write appends exactly its change rows, in the
// statement or transaction of the write itself, and a write that changes
// nothing appends none.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

interface Change {
  seq: number;
  kind: string;
  study_uid: string;
  series_uid: string | null;
  sop_instance_uid: string | null;
  tx: string;
}

const ctx = (over: Partial<ArchiveContext['config']> = {}): ArchiveContext => ({ ...a.deps, config: { ...a.deps.config, ...over }, log: () => undefined });
const admin = () => newCaller(ADMIN, { protocol: 'cli', command: 'test' });
const put = (bytes: Buffer, over: Partial<ArchiveContext['config']> = {}) => storeInstance(ctx(over), admin(), Readable.from([bytes]));

async function lastSeq(): Promise<number> {
  const r = await a.deps.db('changes').max<{ max: number | null }[]>('seq as max').first();
  return Number(r?.max ?? 0);
}

/** The change rows appended while `write` ran. */
async function changesOf(write: () => Promise<unknown>): Promise<Change[]> {
  const before = await lastSeq();
  await write();
  const rows: Change[] = await a.deps
    .db('changes')
    .where('seq', '>', before)
    .orderBy('seq')
    .select('seq', 'kind', 'study_uid', 'series_uid', 'sop_instance_uid', a.deps.db.raw('tx::text as tx'));
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

const brief = (c: Change[]) => c.map((r) => [r.kind, r.study_uid, r.series_uid, r.sop_instance_uid]);

async function refusingChanges<T>(fn: () => Promise<T>): Promise<T> {
  // A NOT VALID check constraint refuses every new row while leaving existing ones alone.
  await a.deps.db.raw('alter table changes add constraint refuse_new check (false) not valid');
  try {
    return await fn();
  } finally {
    await a.deps.db.raw('alter table changes drop constraint refuse_new');
  }
}

describe('a store', () => {
  it('appends one "stored" row per new instance, in the order the instances were stored', async () => {
    const first = syntheticInstance();
    const second = syntheticInstance({ studyUid: first.studyUid, seriesUid: first.seriesUid });
    const third = syntheticInstance({ studyUid: first.studyUid });
    const rows = await changesOf(async () => {
      for (const i of [first, second, third]) expect(await put(i.bytes)).toMatchObject({ ok: true, duplicate: false });
    });
    expect(brief(rows)).toEqual([first, second, third].map((i) => ['stored', i.studyUid, i.seriesUid, i.sopInstanceUid]));
    expect(rows[0].seq).toBeLessThan(rows[1].seq);
    expect(rows[1].seq).toBeLessThan(rows[2].seq);
  });

  it('over STOW-RS appends one row per stored instance and none for a part that failed', async () => {
    const one = syntheticInstance();
    const two = syntheticInstance({ studyUid: one.studyUid });
    const { body, contentType } = multipartBody([one.bytes, Buffer.from('not DICOM'), two.bytes]);
    const rows = await changesOf(async () => {
      expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(202);
    });
    expect(rows.map((r) => r.sop_instance_uid).sort()).toEqual([one.sopInstanceUid, two.sopInstanceUid].sort());
    expect(rows.every((r) => r.kind === 'stored')).toBe(true);
  });

  it('of an instance already stored with the same content appends nothing', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    const rows = await changesOf(async () => expect(await put(i.bytes)).toMatchObject({ ok: true, duplicate: true }));
    expect(rows).toEqual([]);
  });

  it('that conflicts with a stored instance appends nothing', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    const other = syntheticInstance({ studyUid: i.studyUid, seriesUid: i.seriesUid, sopInstanceUid: i.sopInstanceUid, InstanceNumber: '2' });
    const rows = await changesOf(async () => expect(await put(other.bytes)).toMatchObject({ ok: false, reason: 0x0111 }));
    expect(rows).toEqual([]);
  });

  it('whose series belongs to another study appends nothing', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    const elsewhere = syntheticInstance({ seriesUid: i.seriesUid });
    const rows = await changesOf(async () => expect(await put(elsewhere.bytes)).toMatchObject({ ok: false }));
    expect(rows).toEqual([]);
    expect(await a.deps.db('instances').where({ sop_instance_uid: elsewhere.sopInstanceUid })).toHaveLength(0);
  });

  it('that replaces an instance (DUPLICATE_POLICY=overwrite) appends one "replaced" row', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    const newer = syntheticInstance({ studyUid: i.studyUid, seriesUid: i.seriesUid, sopInstanceUid: i.sopInstanceUid, InstanceNumber: '2' });
    const rows = await changesOf(async () => expect(await put(newer.bytes, { duplicatePolicy: 'overwrite' })).toMatchObject({ ok: true, duplicate: true }));
    expect(brief(rows)).toEqual([['replaced', i.studyUid, i.seriesUid, i.sopInstanceUid]]);
  });

  it('fails as a whole when its change row cannot be written: no instance row, no change row', async () => {
    const i = syntheticInstance();
    const rows = await changesOf(async () => {
      const res = await refusingChanges(() => put(i.bytes));
      expect(res).toMatchObject({ ok: false, reason: 0x0110 });
    });
    expect(rows).toEqual([]);
    expect(await a.deps.db('instances').where({ sop_instance_uid: i.sopInstanceUid })).toHaveLength(0);
    expect(await a.deps.db('studies').where({ study_uid: i.studyUid })).toHaveLength(0);
  });
});

describe('a delete', () => {
  it('appends one "deleted" row per instance, all in one transaction', async () => {
    const i1 = syntheticInstance();
    const i2 = syntheticInstance({ studyUid: i1.studyUid, seriesUid: i1.seriesUid });
    const i3 = syntheticInstance({ studyUid: i1.studyUid });
    for (const i of [i1, i2, i3]) await put(i.bytes);
    const rows = await changesOf(async () => expect((await a.request.delete(`/dicom-web/studies/${i1.studyUid}`)).status).toBe(204));
    expect(rows.map((r) => r.kind)).toEqual(['deleted', 'deleted', 'deleted']);
    expect(rows.map((r) => r.sop_instance_uid).sort()).toEqual([i1, i2, i3].map((i) => i.sopInstanceUid).sort());
    for (const r of rows) expect(r.study_uid).toBe(i1.studyUid);
    expect(new Set(rows.map((r) => r.tx)).size).toBe(1);
  });

  it('appends rows only for what the caller could see and so deleted', async () => {
    const open = syntheticInstance();
    const hidden = syntheticInstance({ studyUid: open.studyUid });
    for (const i of [open, hidden]) await put(i.bytes);
    expect((await a.request.put(`/api/studies/${open.studyUid}/series/${hidden.seriesUid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
    const rows = await changesOf(async () => expect((await a.request.delete(`/dicom-web/studies/${open.studyUid}`)).status).toBe(204));
    expect(brief(rows)).toEqual([['deleted', open.studyUid, open.seriesUid, open.sopInstanceUid]]);
    expect(await a.deps.db('instances').where({ sop_instance_uid: hidden.sopInstanceUid })).toHaveLength(1);
  });

  it('of nothing the caller can see appends nothing', async () => {
    const rows = await changesOf(async () => expect(await deleteFromArchive(ctx(), admin(), { studyUid: uid() })).toBeUndefined());
    expect(rows).toEqual([]);
  });

  it('fails as a whole when its change rows cannot be written: the instances and their blobs stay', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    const row = await a.deps.db('instances').where({ sop_instance_uid: i.sopInstanceUid }).first('blob_key', 'size');
    const res = await refusingChanges(() => a.request.delete(`/dicom-web/studies/${i.studyUid}`));
    expect(res.status).toBe(500);
    expect(await a.deps.db('instances').where({ sop_instance_uid: i.sopInstanceUid })).toHaveLength(1);
    expect((await a.deps.blobs.read(row.blob_key, row.size)).length).toBe(row.size);
  });
});

describe('a relabel', () => {
  it('appends one "relabelled" row per instance of the study, or of the series', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    const other = syntheticInstance({ studyUid: i.studyUid });
    await put(other.bytes);
    const study = await changesOf(async () => expect((await a.request.put(`/api/studies/${i.studyUid}/labels`).send({ labels: ['vip'] })).status).toBe(200));
    expect(brief(study).sort()).toEqual(
      [
        ['relabelled', i.studyUid, i.seriesUid, i.sopInstanceUid],
        ['relabelled', i.studyUid, other.seriesUid, other.sopInstanceUid],
      ].sort(),
    );
    const series = await changesOf(async () => expect((await a.request.delete(`/api/studies/${i.studyUid}/series/${i.seriesUid}/labels`)).status).toBe(200));
    expect(series).toEqual([]);
    const labelled = await changesOf(async () =>
      expect((await a.request.put(`/api/studies/${i.studyUid}/series/${i.seriesUid}/labels`).send({ labels: ['photo'] })).status).toBe(200),
    );
    expect(brief(labelled)).toEqual([['relabelled', i.studyUid, i.seriesUid, i.sopInstanceUid]]);
  });

  it('to the labels it already has appends nothing', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    await relabel(a.deps, admin(), { studyUid: i.studyUid }, ['b', 'a']);
    const rows = await changesOf(async () =>
      expect(await relabel(a.deps, admin(), { studyUid: i.studyUid }, ['a', 'b', 'a'])).toEqual({ before: ['a', 'b'], after: ['a', 'b'] }),
    );
    expect(rows).toEqual([]);
  });

  it('of a study that does not exist appends nothing', async () => {
    const rows = await changesOf(async () => expect((await a.request.put(`/api/studies/${uid()}/labels`).send({ labels: ['vip'] })).status).toBe(404));
    expect(rows).toEqual([]);
  });

  it('fails as a whole when its change row cannot be written: the labels stay as they were', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    const res = await refusingChanges(() => a.request.put(`/api/studies/${i.studyUid}/labels`).send({ labels: ['vip'] }));
    expect(res.status).toBe(500);
    expect((await a.request.get(`/api/studies/${i.studyUid}/labels`)).body.labels).toEqual([]);
  });
});

describe('a relabel row', () => {
  it('keeps the labels the study and series had before it', async () => {
    const i = syntheticInstance();
    await put(i.bytes);
    await relabel(a.deps, admin(), { studyUid: i.studyUid, seriesUid: i.seriesUid }, ['photo']);
    const before = await lastSeq();
    await relabel(a.deps, admin(), { studyUid: i.studyUid }, ['vip']);
    await relabel(a.deps, admin(), { studyUid: i.studyUid, seriesUid: i.seriesUid }, []);
    const rows = await a.deps.db('changes').where('seq', '>', before).orderBy('seq').select('study_labels_before', 'series_labels_before');
    expect(rows).toEqual([
      { study_labels_before: [], series_labels_before: ['photo'] },
      { study_labels_before: ['vip'], series_labels_before: ['photo'] },
    ]);
  });
});

describe('the sequence', () => {
  it('orders writes of every kind as they happened', async () => {
    const i = syntheticInstance();
    const rows = await changesOf(async () => {
      await put(i.bytes);
      await relabel(a.deps, admin(), { studyUid: i.studyUid }, ['vip']);
      await deleteFromArchive(ctx(), newCaller(ADMIN, { protocol: 'cli', command: 'test' }, 'cleaning up a test study'), { studyUid: i.studyUid });
    });
    expect(rows.map((r) => r.kind)).toEqual(['stored', 'relabelled', 'deleted']);
    expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((x, y) => x - y));
  });
});
