import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { newCaller } from '../server/access.js';
import { deleteFromArchive, relabel, storeInstance, sweepOrphans } from '../server/archive.js';
import { newInstanceKey } from '../server/blob/blob-store.js';
import { ADMIN, createTestArchive, multipartBody, sample, type TestArchive } from './helpers.js';
import { syntheticInstance } from './synthetic.js';

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

const ctx = () => ({ ...a.deps, log: () => undefined });
const caller = () => newCaller(ADMIN, { protocol: 'cli', command: 'test' });
const chunks = (buf: Buffer, size = 7) => Readable.from(Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size)));

async function blobKeys(): Promise<string[]> {
  const out: string[] = [];
  for await (const b of a.deps.blobs.list('instances/')) out.push(b.key);
  return out;
}

describe('storeInstance', () => {
  it('parses an instance delivered in tiny chunks', async () => {
    const inst = syntheticInstance({ frames: 2 });
    const res = await storeInstance(ctx(), caller(), chunks(inst.bytes));
    expect(res).toMatchObject({ ok: true, sopInstanceUid: inst.sopInstanceUid, duplicate: false });
  });

  it('never touches the blob store for a part whose first bytes show it is not a Part-10 file', async () => {
    let puts = 0;
    const counting = {
      ...ctx(),
      blobs: {
        ...a.deps.blobs,
        put: (key: string, body: Readable) => {
          puts++;
          return a.deps.blobs.put(key, body);
        },
      },
    };
    const notDicom = [Buffer.alloc(0), Buffer.from('abcd'), Buffer.alloc(131), Buffer.concat([Buffer.alloc(128), Buffer.from('DICX'), Buffer.alloc(400)])];
    for (const bytes of notDicom) {
      const res = await storeInstance(counting, caller(), chunks(bytes, 5));
      expect(res).toMatchObject({ ok: false, reason: 0xc000 });
    }
    expect(puts).toBe(0);
    // A Part-10 file delivered in chunks smaller than its prefix still gets its blob, whole.
    const inst = syntheticInstance();
    expect(await storeInstance(counting, caller(), chunks(inst.bytes, 5))).toMatchObject({ ok: true, sopInstanceUid: inst.sopInstanceUid });
    expect(puts).toBe(1);
    const row = await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid }).first('blob_key', 'size');
    expect(Buffer.compare(await a.deps.blobs.read(row.blob_key, row.size), inst.bytes)).toBe(0);
  });

  it('deletes the blob when the index write fails, and reports 0x0110', async () => {
    const inst = syntheticInstance();
    const before = await blobKeys();
    // A NOT VALID check constraint refuses every new row while leaving existing ones alone.
    await a.deps.db.raw('alter table instances add constraint refuse_new check (false) not valid');
    try {
      const res = await storeInstance(ctx(), caller(), chunks(inst.bytes, 4096));
      expect(res).toMatchObject({ ok: false, reason: 0x0110, sopInstanceUid: inst.sopInstanceUid });
    } finally {
      await a.deps.db.raw('alter table instances drop constraint refuse_new');
    }
    expect(await blobKeys()).toEqual(before);
    expect(await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid })).toHaveLength(0);
  });

  it('keeps one index row and one blob when the same instance arrives in parallel', async () => {
    const inst = syntheticInstance();
    const before = (await blobKeys()).length;
    const results = await Promise.all(Array.from({ length: 6 }, () => storeInstance(ctx(), caller(), chunks(inst.bytes, 1024))));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results.filter((r) => r.ok && !r.duplicate)).toHaveLength(1);
    expect(await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid })).toHaveLength(1);
    expect((await blobKeys()).length).toBe(before + 1);
  });

  it('creates one study and one series row when a new study arrives over many requests at once', async () => {
    const first = syntheticInstance();
    const all = [first, ...Array.from({ length: 7 }, () => syntheticInstance({ studyUid: first.studyUid, seriesUid: first.seriesUid }))];
    const res = await Promise.all(
      all.map((i) => {
        const m = multipartBody([i.bytes]);
        return a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body);
      }),
    );
    expect(res.map((r) => r.status)).toEqual(all.map(() => 200));
    expect(await a.deps.db('studies').where({ study_uid: first.studyUid })).toHaveLength(1);
    expect(await a.deps.db('series').where({ series_uid: first.seriesUid })).toHaveLength(1);
    expect(await a.deps.db('instances').where({ series_uid: first.seriesUid })).toHaveLength(8);
  });
});

describe('sweepOrphans', () => {
  // Ages blobs by their file times, so the filesystem store only (test/s3/ covers S3).
  it.skipIf(inject('s3'))('removes old blobs without an index row and keeps indexed and recent ones', async () => {
    const inst = syntheticInstance();
    await storeInstance(ctx(), caller(), chunks(inst.bytes, 4096));
    const orphanOld = path.join(a.blobDir, 'instances/zz/old-orphan.dcm');
    const orphanNew = path.join(a.blobDir, 'instances/zz/new-orphan.dcm');
    fs.mkdirSync(path.dirname(orphanOld), { recursive: true });
    fs.writeFileSync(orphanOld, 'x');
    fs.writeFileSync(orphanNew, 'x');
    const old = new Date(Date.now() - 2 * 3600_000);
    fs.utimesSync(orphanOld, old, old);
    const indexed = await a.deps.db('instances').select('blob_key');
    for (const r of indexed) fs.utimesSync(path.join(a.blobDir, r.blob_key), old, old);
    const removed = await sweepOrphans(a.deps.db, a.deps.blobs, 3600);
    expect(removed).toBe(1);
    expect(fs.existsSync(orphanOld)).toBe(false);
    expect(fs.existsSync(orphanNew)).toBe(true);
    for (const r of indexed) expect(fs.existsSync(path.join(a.blobDir, r.blob_key))).toBe(true);
  });
});

describe('the sweep at start and every hour', () => {
  it.skipIf(inject('s3'))('looks only at the folders of recent hours, where a crash leaves orphans; the full sweep looks everywhere', async () => {
    const old = new Date(Date.now() - 2 * 3600_000);
    const orphan = (key: string) => {
      const file = path.join(a.blobDir, key);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, 'x');
      fs.utimesSync(file, old, old);
      return file;
    };
    const recent = orphan(newInstanceKey('recent-orphan', new Date(Date.now() - 3 * 3600_000)));
    const longAgo = orphan(newInstanceKey('old-orphan', new Date('2020-01-01T00:00:00Z')));
    expect(await sweepOrphans(a.deps.db, a.deps.blobs, 3600, 48)).toBe(1);
    expect(fs.existsSync(recent)).toBe(false);
    expect(fs.existsSync(longAgo)).toBe(true);
    expect(await sweepOrphans(a.deps.db, a.deps.blobs, 3600)).toBe(1);
    expect(fs.existsSync(longAgo)).toBe(false);
  });
});

describe('storeInstance keeps the bytes', () => {
  it('stores a mislabelled implicit-VR file (SC_rgb_jpeg.dcm) byte for byte while reading it as implicit', async () => {
    const bytes = sample('SC_rgb_jpeg.dcm');
    const res = await storeInstance(ctx(), caller(), chunks(bytes, 4096));
    expect(res.ok).toBe(true);
    const row = await a.deps
      .db('instances')
      .where({ sop_instance_uid: res.ok ? res.sopInstanceUid : '' })
      .first('blob_key', 'size');
    expect(Buffer.compare(await a.deps.blobs.read(row.blob_key, row.size), bytes)).toBe(0);
  });
});

describe('every write checks the caller, whatever its protocol', () => {
  const clinician = () => newCaller({ sub: 'dr-x', roles: ['clinician'], clearances: [] }, { protocol: 'dimse', callingAe: 'VIEWER', address: '10.0.0.9' });

  it('refuses a store by a caller whose roles may not store, before any blob is written', async () => {
    const inst = syntheticInstance();
    const before = await blobKeys();
    await expect(storeInstance(ctx(), clinician(), chunks(inst.bytes, 4096))).rejects.toMatchObject({ status: 403, code: 'Forbidden' });
    expect(await blobKeys()).toEqual(before);
    expect(await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid })).toHaveLength(0);
  });

  it('refuses a delete and a relabel by a caller whose roles may not, and changes nothing', async () => {
    const inst = syntheticInstance();
    await storeInstance(ctx(), caller(), chunks(inst.bytes, 4096));
    await expect(deleteFromArchive(ctx(), clinician(), { studyUid: inst.studyUid })).rejects.toMatchObject({ status: 403 });
    await expect(relabel(ctx(), clinician(), { studyUid: inst.studyUid }, ['vip'])).rejects.toMatchObject({ status: 403 });
    expect(await a.deps.db('instances').where({ sop_instance_uid: inst.sopInstanceUid })).toHaveLength(1);
    expect((await a.deps.db('studies').where({ study_uid: inst.studyUid }).first('labels')).labels).toEqual([]);
  });

  it('notes what a store, a relabel and a delete touched in the caller, for its audit row', async () => {
    const inst = syntheticInstance();
    const c = caller();
    await storeInstance(ctx(), c, chunks(inst.bytes, 4096));
    expect([...c.touched.instances]).toEqual([inst.sopInstanceUid]);
    const r = caller();
    expect(await relabel(ctx(), r, { studyUid: inst.studyUid, seriesUid: inst.seriesUid }, ['b', 'a', 'b'])).toEqual({ before: [], after: ['a', 'b'] });
    expect([...r.touched.series]).toEqual([inst.seriesUid]);
    // The series is labelled now: only with the glass broken does this admin see it to delete it.
    const d = newCaller(ADMIN, { protocol: 'cli', command: 'test' }, 'removing a labelled test study');
    expect(await deleteFromArchive(ctx(), d, { studyUid: inst.studyUid })).toBe(1);
    expect([...d.touched.instances]).toEqual([inst.sopInstanceUid]);
  });
});
