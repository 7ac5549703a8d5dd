import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startReplicas, type CairnProcess } from './cairn-process.js';
import { createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance, uid } from './synthetic.js';

// Two real Cairn processes over one database and one bucket, as N replicas
// behind a load balancer run in production.
const s3 = inject('s3');

describe.runIf(s3)('two replicas on one database and one bucket', () => {
  let a: TestArchive;
  let replicas: CairnProcess[] = [];
  beforeAll(async () => {
    a = await createTestArchive();
    // Both start together; if one fails the other is stopped, so no process outlives the test.
    replicas = await startReplicas(a, 2);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await a?.close();
  });

  it('store one study from several clients at once through both, ending with every instance once and right counts', async () => {
    const studyUid = uid();
    const series = [uid(), uid(), uid()];
    const instances = series.flatMap((seriesUid, s) =>
      Array.from({ length: 8 }, (_, i) => syntheticInstance({ studyUid, seriesUid, frames: 1 + ((s + i) % 3), InstanceNumber: String(i + 1) })),
    );
    // Four clients each send the whole study, in their own order, five
    // instances per request, alternating between the replicas.
    const clients = Array.from({ length: 4 }, (_, c) => {
      const order = [...instances].sort(() => Math.random() - 0.5);
      const batches = Array.from({ length: Math.ceil(order.length / 5) }, (_, i) => order.slice(i * 5, i * 5 + 5));
      return (async () => {
        const statuses: number[] = [];
        for (const [i, batch] of batches.entries()) {
          const m = multipartBody(batch.map((x) => x.bytes));
          const res = await fetch(`${replicas[(c + i) % 2].dicomweb}/studies`, {
            method: 'POST',
            headers: { 'Content-Type': m.contentType },
            body: new Uint8Array(m.body),
          });
          await res.arrayBuffer();
          statuses.push(res.status);
        }
        return statuses;
      })();
    });
    const statuses = (await Promise.all(clients)).flat();
    expect(
      statuses.every((s) => s === 200),
      `statuses ${statuses}`,
    ).toBe(true);

    for (const r of replicas) {
      const res = await fetch(`${r.dicomweb}/studies?StudyInstanceUID=${studyUid}`);
      const [study] = (await res.json()) as Record<string, { Value?: unknown[] }>[];
      expect(study['00201206'].Value).toEqual([3]);
      expect(study['00201208'].Value).toEqual([24]);
      const list = (await (await fetch(`${r.dicomweb}/studies/${studyUid}/instances`)).json()) as unknown[];
      expect(list).toHaveLength(24);
    }
    const rows: { sop_instance_uid: string; blob_key: string; sha256: string }[] = await a.deps
      .db('instances')
      .where({ study_uid: studyUid })
      .select('sop_instance_uid', 'blob_key', 'sha256');
    expect(rows.map((r) => r.sop_instance_uid).sort()).toEqual(instances.map((i) => i.sopInstanceUid).sort());
    expect(await a.deps.db('series').where({ study_uid: studyUid }).count({ n: '*' }).first()).toEqual({ n: 3 });
    expect(await a.deps.db('studies').where({ study_uid: studyUid }).count({ n: '*' }).first()).toEqual({ n: 1 });
    // One blob per instance: the copies the losing writers made were removed.
    const keys: string[] = [];
    for await (const b of a.deps.blobs.list('instances/')) keys.push(b.key);
    expect(keys.sort()).toEqual(rows.map((r) => r.blob_key).sort());
    for (const i of instances.slice(0, 3)) {
      const row = rows.find((r) => r.sop_instance_uid === i.sopInstanceUid)!;
      const res = await fetch(`${replicas[1].dicomweb}/studies/${studyUid}/series/${i.seriesUid}/instances/${i.sopInstanceUid}`, {
        headers: { Accept: 'application/dicom; transfer-syntax=*' },
      });
      expect(res.status).toBe(200);
      expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), i.bytes)).toBe(0);
      expect(row.blob_key).toMatch(/^instances\//);
    }
  });
});
