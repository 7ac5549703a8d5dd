import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestArchive, multipartBody, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';

// Every number QIDO computes counts only what the caller may see, as every
// list does (DESIGN.md: one visibility rule, counts and lists alike). The
// study holds a visible series V (CT, 2 instances) and a series H (MR, 3
// instances) labelled "forensic", so a count that let H through differs from
// one that does not, whichever it is.

let a: TestArchive;
const X = uid();
const V = { uid: uid(), modality: 'CT', instances: [uid(), uid()] };
const H = { uid: uid(), modality: 'MR', instances: [uid(), uid(), uid()] };

interface Case {
  name: string;
  who: Who;
  breakGlass?: string;
  seesH: boolean;
}
const cases: Case[] = [
  { name: 'a clinician without clearances', who: { sub: 'dr-1', roles: ['clinician'] }, seesH: false },
  { name: 'a clinician cleared for forensic', who: { sub: 'dr-2', roles: ['clinician'], clearances: ['forensic'] }, seesH: true },
  { name: 'a clinician breaking the glass', who: { sub: 'dr-3', roles: ['clinician'] }, breakGlass: 'unconscious patient in the emergency room', seesH: true },
];

beforeAll(async () => {
  a = await createTestArchive();
  const parts = [V, H].flatMap((se) =>
    se.instances.map(
      (sop, n) => syntheticInstance({ studyUid: X, seriesUid: se.uid, sopInstanceUid: sop, Modality: se.modality, InstanceNumber: String(n + 1) }).bytes,
    ),
  );
  const { body, contentType } = multipartBody(parts);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
  expect((await a.request.put(`/api/studies/${X}/series/${H.uid}/labels`).send({ labels: ['forensic'] })).status).toBe(200);
});
afterAll(async () => {
  await a?.close();
});

function get(c: Case, url: string) {
  const r = a.as(c.who).get(url).set('Accept', 'application/dicom+json');
  return c.breakGlass ? r.set('X-Break-Glass', c.breakGlass) : r;
}
const value = (row: any, tag: string) => row[tag]?.Value;
const remaining = (res: { headers: Record<string, string | string[] | undefined> }) =>
  /There are (\d+) additional results/.exec(String(res.headers.warning ?? ''))?.[1];

describe.each(cases)('QIDO counts for $name', (c) => {
  const series = c.seesH ? [V, H] : [V];
  const instances = series.flatMap((se) => se.instances);

  it('NumberOfStudyRelatedSeries, NumberOfStudyRelatedInstances and ModalitiesInStudy count the series the caller may see', async () => {
    const res = await get(c, `/dicom-web/studies?StudyInstanceUID=${X}`);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(1);
    expect(value(res.body[0], '00201206')).toEqual([series.length]);
    expect(value(res.body[0], '00201208')).toEqual([instances.length]);
    expect(value(res.body[0], '00080061')).toEqual(series.map((se) => se.modality).sort());
  });

  it('ModalitiesInStudy matching finds the study by a series the caller may see only', async () => {
    const res = await get(c, `/dicom-web/studies?StudyInstanceUID=${X}&ModalitiesInStudy=MR`);
    expect(res.body.map((r: any) => value(r, '0020000D')[0])).toEqual(c.seesH ? [X] : []);
  });

  it('NumberOfSeriesRelatedInstances, at series and at instance level, and only for series the caller may see', async () => {
    for (const url of [`/dicom-web/studies/${X}/series?includefield=00201209`, `/dicom-web/studies/${X}/instances?includefield=00201209`]) {
      const res = await get(c, url);
      expect(res.status, url).toBe(200);
      for (const row of res.body) {
        const se = [V, H].find((s) => s.uid === value(row, '0020000E')[0])!;
        expect(series, url).toContain(se);
        expect(value(row, '00201209'), url).toEqual([se.instances.length]);
      }
    }
  });

  it('the number of further results in the Warning counts visible matches only (PS3.18 §8.3.4.4)', async () => {
    const s = await get(c, `/dicom-web/studies/${X}/series?limit=1`);
    expect(s.body).toHaveLength(1);
    expect(remaining(s)).toBe(series.length > 1 ? String(series.length - 1) : undefined);
    const i = await get(c, `/dicom-web/studies/${X}/instances?limit=1`);
    expect(i.body).toHaveLength(1);
    expect(remaining(i)).toBe(String(instances.length - 1));
  });
});

describe('every statement of a read', () => {
  // The statements run on the archive's pool while the reads below are
  // answered, as PostgreSQL receives them (knex-built and prepared alike).
  const statements = new Set<string>();
  beforeAll(() => {
    const client = a.deps.db.client;
    const acquire = client.acquireConnection.bind(client);
    const wrapped = new WeakSet<object>();
    client.acquireConnection = async () => {
      const conn = await acquire();
      if (!wrapped.has(conn)) {
        wrapped.add(conn);
        const query = conn.query.bind(conn);
        conn.query = (q: string | { text: string }, ...rest: unknown[]) => {
          statements.add(typeof q === 'string' ? q : q.text);
          return query(q, ...rest);
        };
      }
      return conn;
    };
  });

  // A coarse net under the tests above: a statement that joins a studies or
  // series row under an alias the rule never names has bypassed it. (It goes
  // by alias names only; which row a count may count is asserted above.)
  it('names the visibility rule for every alias of a studies or series row it reads', async () => {
    const c = cases[0];
    const reads = [
      `/dicom-web/studies?StudyInstanceUID=${X}&includefield=all`,
      `/dicom-web/studies?ModalitiesInStudy=CT&includefield=all`,
      `/dicom-web/series?includefield=all`,
      `/dicom-web/studies/${X}/series?includefield=all`,
      `/dicom-web/instances?includefield=00201209`,
      `/dicom-web/studies/${X}/instances?includefield=all`,
      `/dicom-web/studies/${X}/series/${V.uid}/instances?includefield=all`,
      `/dicom-web/studies/${X}/metadata`,
      `/dicom-web/studies/${X}/series/${V.uid}/metadata`,
      `/dicom-web/studies/${X}/series/${V.uid}/instances/${V.instances[0]}/metadata`,
    ];
    for (const url of reads) expect((await get(c, url)).status, url).toBe(200);
    const retrieves: [string, string][] = [
      [`/dicom-web/studies/${X}`, 'multipart/related; type="application/dicom"'],
      [`/dicom-web/studies/${X}/series/${V.uid}/instances/${V.instances[0]}/frames/1`, 'multipart/related; type="application/octet-stream"'],
    ];
    for (const [url, accept] of retrieves) expect((await a.as(c.who).get(url).set('Accept', accept)).status, url).toBe(200);
    const reading = [...statements].filter((s) => /^\s*(with|select)\b/i.test(s) && /\b(studies|series|instances)\b/.test(s));
    // A QIDO statement per level at least, and the WADO lookups.
    expect(reading.length).toBeGreaterThanOrEqual(6);
    for (const text of reading) {
      const rows = [...text.matchAll(/\b(?:from|join)\s+"?(studies|series)"?(?:\s+as)?\s+"?([a-z_][a-z0-9_]*)"?/gi)].map((m) => m[2]);
      expect(rows.length, text).toBeGreaterThan(0);
      for (const alias of rows) expect(text, `${alias} in ${text}`).toMatch(new RegExp(`"?\\b${alias}"?\\."?labels"? <@`));
    }
  });
});
