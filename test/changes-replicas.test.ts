import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startReplicas, type CairnProcess } from './cairn-process.js';
import { createTestArchive, multipartBody, type TestArchive } from './helpers.js';
import { syntheticInstance, uid } from './synthetic.js';
import { keyObject } from './dicomweb/kos.js';

// A mirror follows /api/changefeed while stores, replacements, deletes,
// relabels and a rejection go through two Cairn processes over one database
// and one bucket, and ends with exactly the instances (and versions) the
// archive shows it.
const s3 = inject('s3');

interface Entry {
  Sequence: number;
  Action: string;
  State: string;
  SopInstanceUid: string;
  Metadata?: Record<string, { Value?: unknown[] }>;
}

describe.runIf(s3)('a mirror following the change feed of two replicas', () => {
  let a: TestArchive;
  let replicas: CairnProcess[] = [];
  beforeAll(async () => {
    a = await createTestArchive();
    replicas = await startReplicas(a, 2, { DUPLICATE_POLICY: 'overwrite' });
  }, 120_000);
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await a?.close();
  });

  let turn = 0;
  /** Each request goes to the other replica than the last. */
  const send = async (path: string, init: RequestInit = {}): Promise<Response> => fetch(`${replicas[turn++ % 2].origin}${path}`, init);
  const ok = async (res: Response | Promise<Response>) => {
    const r = await res;
    const text = await r.text();
    expect(r.status, text).toBeLessThan(300);
    return text;
  };
  const stow = (parts: Buffer[]) => {
    const m = multipartBody(parts);
    return ok(send('/dicom-web/studies', { method: 'POST', headers: { 'Content-Type': m.contentType }, body: new Uint8Array(m.body) }));
  };
  const label = (path: string, labels: string[]) =>
    ok(send(`/api/studies/${path}/labels`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ labels }) }));

  it('reconstructs the visible instances and their versions exactly', async () => {
    const studies = Array.from({ length: 3 }, () => ({ studyUid: uid(), series: [uid(), uid()] }));
    const instances = studies.flatMap((s) =>
      s.series.flatMap((seriesUid) =>
        Array.from({ length: 3 }, (_, i) => syntheticInstance({ studyUid: s.studyUid, seriesUid, InstanceNumber: String(i + 1) })),
      ),
    );
    const [s0, s1, s2] = studies;
    const of = (s: (typeof studies)[number], series: number) => instances.filter((i) => i.seriesUid === s.series[series]);

    const mirror = new Map<string, unknown>();
    let offset = 0;
    let reads = 0;
    /** One page through either replica; true when it was empty. */
    const follow = async (): Promise<boolean> => {
      const res = await send(`/api/changefeed?offset=${offset}&limit=7`);
      const entries = (await res.json()) as Entry[];
      expect(res.status).toBe(200);
      reads++;
      for (const e of entries) {
        expect(e.Sequence).toBeGreaterThan(offset);
        offset = e.Sequence;
        if (e.State === 'current' || e.State === 'replaced') mirror.set(e.SopInstanceUid, e.Metadata?.['00200013']?.Value?.[0]);
        else mirror.delete(e.SopInstanceUid);
      }
      const next = /offset=(\d+)/.exec(res.headers.get('link') ?? '');
      if (next) offset = Math.max(offset, Number(next[1]));
      return entries.length === 0;
    };

    let writing = true;
    const follower = (async () => {
      while (writing) {
        await follow();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    // Writers on both replicas at once: every study in its own order, in batches.
    await Promise.all(
      studies.map(async (s) => {
        const mine = instances.filter((i) => i.studyUid === s.studyUid).sort(() => Math.random() - 0.5);
        for (let i = 0; i < mine.length; i += 2) await stow(mine.slice(i, i + 2).map((x) => x.bytes));
      }),
    );
    await Promise.all([
      // New versions of two instances (DUPLICATE_POLICY=overwrite).
      ...of(s0, 0)
        .slice(0, 2)
        .map((i) => stow([syntheticInstance({ studyUid: i.studyUid, seriesUid: i.seriesUid, sopInstanceUid: i.sopInstanceUid, InstanceNumber: '40' }).bytes])),
      // A series and an instance deleted.
      ok(send(`/dicom-web/studies/${s0.studyUid}/series/${s0.series[1]}`, { method: 'DELETE' })),
      ok(send(`/dicom-web/studies/${s1.studyUid}/series/${s1.series[0]}/instances/${of(s1, 0)[0].sopInstanceUid}`, { method: 'DELETE' })),
      // A study the mirror may no longer see, and a series hidden and shown again.
      label(s2.studyUid, ['vip']),
      (async () => {
        await label(`${s1.studyUid}/series/${s1.series[1]}`, ['vip']);
        await label(`${s1.studyUid}/series/${s1.series[1]}`, []);
      })(),
      // An instance rejected by a note.
      stow([keyObject(s1.studyUid, [of(s1, 0)[1]]).bytes]),
    ]);
    // A study shown again after the mirror saw it go.
    await label(s2.studyUid, []);
    await label(`${s2.studyUid}/series/${s2.series[0]}`, ['vip']);
    writing = false;
    await follower;
    // Caught up once a read through each replica finds nothing new.
    while (!((await follow()) && (await follow())));
    expect(reads).toBeGreaterThan(3);

    const res = await send('/dicom-web/instances?includefield=00200013&limit=1000');
    const visible = (await res.json()) as Record<string, { Value?: unknown[] }>[];
    const truth = new Map(visible.map((r) => [r['00080018'].Value?.[0] as string, r['00200013']?.Value?.[0]]));
    // What the writes leave visible to the mirror (an admin without clearances): s0's first series (two instances
    // in their new version), s1 without the deleted and the rejected instance but with the note, s2's second series.
    expect(truth.size).toBe(3 + (1 + 3 + 1) + 3);
    expect([...truth.values()].filter((n) => n === 40)).toHaveLength(2);
    expect(new Map([...mirror].sort())).toEqual(new Map([...truth].sort()));
  }, 120_000);
});
