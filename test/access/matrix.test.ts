import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../server/access.js';
import { createTestArchive, multipartBody, parseMultipart, binaryParser, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance, uid } from '../synthetic.js';

// Issue 3's matrix: every role × labelled / unlabelled study and series ×
// every DICOMweb path, asserting exactly who sees what, that a hidden study
// or series is indistinguishable from a missing one (status, body, counts),
// and that each request leaves exactly one audit row naming what it returned.
//
// The data: study A (no labels) holds series A1 (CT, 2 instances, no labels)
// and A2 (XC, 1 instance, labelled "forensic"); study B (labelled "vip")
// holds series B1 (MR, 1 instance).

interface SeriesModel {
  uid: string;
  study: 'A' | 'B';
  modality: string;
  labels: string[];
  instances: string[];
}

let a: TestArchive;
const study = { A: { uid: uid(), labels: [] as string[] }, B: { uid: uid(), labels: ['vip'] } };
const series: Record<'A1' | 'A2' | 'B1', SeriesModel> = {
  A1: { uid: uid(), study: 'A', modality: 'CT', labels: [], instances: [uid(), uid()] },
  A2: { uid: uid(), study: 'A', modality: 'XC', labels: ['forensic'], instances: [uid()] },
  B1: { uid: uid(), study: 'B', modality: 'MR', labels: [], instances: [uid()] },
};
const allSeries = Object.values(series);

interface Case {
  name: string;
  who: Who;
  breakGlass?: string;
  /** What the case expects: 'read' sees by clearances, 'denied' is refused every read. */
  kind: 'read' | 'denied';
}

const cases: Case[] = [
  { name: 'uploader', who: { sub: 'pacs-1', roles: ['uploader'] }, kind: 'denied' },
  { name: 'auditor', who: { sub: 'aud-1', roles: ['auditor'] }, kind: 'denied' },
  { name: 'clinician without clearances', who: { sub: 'dr-plain', roles: ['clinician'] }, kind: 'read' },
  { name: 'clinician cleared for vip and forensic', who: { sub: 'dr-cleared', roles: ['clinician'], clearances: ['vip', 'forensic'] }, kind: 'read' },
  { name: 'clinician breaking the glass', who: { sub: 'dr-er', roles: ['clinician'] }, breakGlass: 'unconscious patient in the emergency room', kind: 'read' },
  { name: 'researcher cleared for vip', who: { sub: 'res-1', roles: ['researcher'], clearances: ['vip'] }, kind: 'read' },
  { name: 'admin without clearances', who: { sub: 'adm-1', roles: ['admin'] }, kind: 'read' },
];

function cleared(c: Case, labels: string[]): boolean {
  return c.breakGlass !== undefined || labels.every((l) => (c.who.clearances ?? []).includes(l));
}
const studyVisible = (c: Case, s: 'A' | 'B') => c.kind === 'read' && cleared(c, study[s].labels);
const seriesVisible = (c: Case, se: SeriesModel) => studyVisible(c, se.study) && cleared(c, se.labels);
const visibleSeriesOf = (c: Case, s?: 'A' | 'B') => allSeries.filter((se) => (!s || se.study === s) && seriesVisible(c, se));
const visibleInstancesOf = (c: Case, s?: 'A' | 'B', only?: SeriesModel) =>
  visibleSeriesOf(c, s)
    .filter((se) => !only || se === only)
    .flatMap((se) => se.instances);

const path = {
  study: (s: 'A' | 'B') => `/dicom-web/studies/${study[s].uid}`,
  series: (se: SeriesModel) => `${path.study(se.study)}/series/${se.uid}`,
  instance: (se: SeriesModel, i = 0) => `${path.series(se)}/instances/${se.instances[i]}`,
};

beforeAll(async () => {
  a = await createTestArchive();
  const parts = allSeries.flatMap((se) =>
    se.instances.map(
      (sop) => syntheticInstance({ studyUid: study[se.study].uid, seriesUid: se.uid, sopInstanceUid: sop, Modality: se.modality, rows: 40, columns: 40 }).bytes,
    ),
  );
  const { body, contentType } = multipartBody(parts);
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', contentType).send(body)).status).toBe(200);
  expect((await a.request.put(`/api/studies/${study.B.uid}/labels`).send({ labels: ['vip'] })).status).toBe(200);
  expect((await a.request.put(`/api/studies/${study.A.uid}/series/${series.A2.uid}/labels`).send({ labels: ['forensic'] })).status).toBe(200);
});

afterAll(async () => {
  await a?.close();
});

async function lastAuditId(): Promise<number> {
  const r = await a.deps.db('audit_events').max<{ max: number | null }[]>('id as max').first();
  return Number(r?.max ?? 0);
}

interface Sent {
  status: number;
  body: any;
  text: string;
  audit: any[];
}

/** One request as the case's identity, with the audit rows it left. */
async function send(c: Case, method: 'get' | 'delete', url: string, accept?: string): Promise<Sent> {
  const before = await lastAuditId();
  let r = a.as(c.who)[method](url);
  if (accept) r = r.set('Accept', accept);
  if (c.breakGlass) r = r.set('X-Break-Glass', c.breakGlass);
  const res = await r.buffer(true).parse(binaryParser);
  const audit = await a.deps.db('audit_events').where('id', '>', before).orderBy('id');
  const text = (res.body as Buffer).toString('latin1');
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, audit };
}

function expectOneAuditRow(s: Sent, c: Case, action: string, uids: { studies?: string[]; series?: string[]; instances?: string[] }) {
  expect(s.audit, `audit rows for one ${action}`).toHaveLength(1);
  const row = s.audit[0];
  expect(row.sub).toBe(c.who.sub);
  expect(row.roles).toEqual([...c.who.roles]);
  expect(row.action).toBe(action);
  expect(row.status).toBe(s.status);
  expect(row.break_glass).toBe(c.breakGlass !== undefined);
  expect(row.reason).toBe(c.breakGlass ?? null);
  expect([...row.study_uids].sort()).toEqual([...(uids.studies ?? [])].sort());
  expect([...row.series_uids].sort()).toEqual([...(uids.series ?? [])].sort());
  expect([...row.instance_uids].sort()).toEqual([...(uids.instances ?? [])].sort());
}

/** The same request for a UID that does not exist answers with this status and body (UIDs swapped). */
async function expectLikeMissing(c: Case, hidden: Sent, url: string, realUid: string, accept?: string) {
  const fake = uid();
  const missing = await send(c, 'get', url.replace(realUid, fake), accept);
  expect(hidden.status).toBe(missing.status);
  expect(hidden.text.replaceAll(realUid, 'UID')).toBe(missing.text.replaceAll(fake, 'UID'));
}

const QIDO = 'application/dicom+json';
const DICOM = 'multipart/related; type="application/dicom"';
const OCTET = 'multipart/related; type="application/octet-stream"';

const tagValues = (rows: any[], tag: string) => rows.map((r) => r[tag]?.Value?.[0]).sort();

describe.each(cases)('$name', (c) => {
  const denied = c.kind === 'denied';

  it('QIDO /studies lists exactly the visible studies, with counts over what the caller may see', async () => {
    const s = await send(c, 'get', '/dicom-web/studies', QIDO);
    if (denied) {
      expect(s.status).toBe(403);
      return expectOneAuditRow(s, c, 'search', {});
    }
    expect(s.status).toBe(200);
    const visible = (['A', 'B'] as const).filter((x) => studyVisible(c, x));
    expect(tagValues(s.body, '0020000D')).toEqual(visible.map((x) => study[x].uid).sort());
    for (const x of visible) {
      const row = s.body.find((r: any) => r['0020000D'].Value[0] === study[x].uid);
      expect(row['00201206'].Value[0]).toBe(visibleSeriesOf(c, x).length);
      expect(row['00201208'].Value[0]).toBe(visibleInstancesOf(c, x).length);
      expect(row['00080061'].Value).toEqual(
        visibleSeriesOf(c, x)
          .map((se) => se.modality)
          .sort(),
      );
    }
    expectOneAuditRow(s, c, 'search', { studies: visible.map((x) => study[x].uid) });
  });

  it('QIDO ModalitiesInStudy does not find a study by a series the caller may not see', async () => {
    const s = await send(c, 'get', '/dicom-web/studies?ModalitiesInStudy=XC', QIDO);
    if (denied) return expect(s.status).toBe(403);
    expect(tagValues(s.body, '0020000D')).toEqual(seriesVisible(c, series.A2) ? [study.A.uid] : []);
  });

  it('QIDO /series and /instances list exactly the visible series and instances', async () => {
    const se = await send(c, 'get', '/dicom-web/series', QIDO);
    const inst = await send(c, 'get', '/dicom-web/instances', QIDO);
    if (denied) {
      expect([se.status, inst.status]).toEqual([403, 403]);
      return;
    }
    expect(tagValues(se.body, '0020000E')).toEqual(
      visibleSeriesOf(c)
        .map((x) => x.uid)
        .sort(),
    );
    expect(tagValues(inst.body, '00080018')).toEqual(visibleInstancesOf(c).sort());
    for (const row of se.body) {
      const m = allSeries.find((x) => x.uid === row['0020000E'].Value[0])!;
      expect(row['00201209'].Value[0]).toBe(m.instances.length);
    }
    expectOneAuditRow(se, c, 'search', {
      studies: [...new Set(visibleSeriesOf(c).map((x) => study[x.study].uid))],
      series: visibleSeriesOf(c).map((x) => x.uid),
    });
    expectOneAuditRow(inst, c, 'search', {
      studies: [...new Set(visibleSeriesOf(c).map((x) => study[x.study].uid))],
      series: visibleSeriesOf(c).map((x) => x.uid),
      instances: visibleInstancesOf(c),
    });
  });

  it.each(['A', 'B'] as const)('QIDO below study %s: the visible series and instances, or 200 [] as for a missing study', async (x) => {
    const se = await send(c, 'get', `${path.study(x)}/series`, QIDO);
    const inst = await send(c, 'get', `${path.study(x)}/instances`, QIDO);
    if (denied) return expect([se.status, inst.status]).toEqual([403, 403]);
    expect(se.status).toBe(200);
    expect(tagValues(se.body, '0020000E')).toEqual(
      visibleSeriesOf(c, x)
        .map((s) => s.uid)
        .sort(),
    );
    expect(tagValues(inst.body, '00080018')).toEqual(visibleInstancesOf(c, x).sort());
    if (!studyVisible(c, x)) {
      await expectLikeMissing(c, se, `${path.study(x)}/series`, study[x].uid, QIDO);
      await expectLikeMissing(c, inst, `${path.study(x)}/instances`, study[x].uid, QIDO);
    }
  });

  it.each(Object.keys(series) as ('A1' | 'A2' | 'B1')[])('QIDO instances of series %s: visible, or 200 [] as for a missing series', async (k) => {
    const se = series[k];
    const s = await send(c, 'get', `${path.series(se)}/instances`, QIDO);
    if (denied) return expect(s.status).toBe(403);
    expect(tagValues(s.body, '00080018')).toEqual(seriesVisible(c, se) ? [...se.instances].sort() : []);
    if (!seriesVisible(c, se)) await expectLikeMissing(c, s, `${path.series(se)}/instances`, se.uid, QIDO);
  });

  it.each(['A', 'B'] as const)('WADO study %s: retrieve and metadata hold the visible instances, or 404 as for a missing study', async (x) => {
    const r = await send(c, 'get', path.study(x), DICOM);
    const m = await send(c, 'get', `${path.study(x)}/metadata`, QIDO);
    if (denied) return expect([r.status, m.status]).toEqual([403, 403]);
    const want = visibleInstancesOf(c, x);
    if (!studyVisible(c, x)) {
      expect([r.status, m.status]).toEqual([404, 404]);
      await expectLikeMissing(c, r, path.study(x), study[x].uid, DICOM);
      await expectLikeMissing(c, m, `${path.study(x)}/metadata`, study[x].uid, QIDO);
      return expectOneAuditRow(r, c, 'retrieve', {});
    }
    expect(r.status).toBe(200);
    expect(tagValues(m.body, '00080018')).toEqual([...want].sort());
    expect(r.text.split('Content-Type: application/dicom').length - 1).toBe(want.length);
    const seriesUids = visibleSeriesOf(c, x).map((s) => s.uid);
    expectOneAuditRow(r, c, 'retrieve', { studies: [study[x].uid], series: seriesUids, instances: want });
    expectOneAuditRow(m, c, 'retrieve', { studies: [study[x].uid], series: seriesUids, instances: want });
  });

  it.each(Object.keys(series) as ('A1' | 'A2' | 'B1')[])(
    'WADO series %s and its first instance: every path answers, or 404 as for a missing one',
    async (k) => {
      const se = series[k];
      const urls: [string, string, string][] = [
        [path.series(se), DICOM, se.uid],
        [`${path.series(se)}/metadata`, QIDO, se.uid],
        [path.instance(se), DICOM, se.instances[0]],
        [`${path.instance(se)}/metadata`, QIDO, se.instances[0]],
        [`${path.instance(se)}/frames/1`, OCTET, se.instances[0]],
        [`${path.instance(se)}/bulkdata/7FE00010`, 'application/octet-stream', se.instances[0]],
        [`${path.instance(se)}/rendered`, 'image/jpeg', se.instances[0]],
        [`${path.instance(se)}/thumbnail`, 'image/jpeg', se.instances[0]],
      ];
      for (const [url, accept, realUid] of urls) {
        const s = await send(c, 'get', url, accept);
        if (denied) {
          expect(s.status, url).toBe(403);
          expectOneAuditRow(s, c, 'retrieve', {});
          continue;
        }
        if (!seriesVisible(c, se)) {
          expect(s.status, url).toBe(404);
          expectOneAuditRow(s, c, 'retrieve', {});
          await expectLikeMissing(c, s, url, realUid, accept);
          continue;
        }
        expect(s.status, url).toBe(200);
        const instances = url.includes('/instances/') ? [se.instances[0]] : se.instances;
        expectOneAuditRow(s, c, 'retrieve', { studies: [study[se.study].uid], series: [se.uid], instances });
      }
    },
  );

  it('DELETE is refused to every role but admin', async () => {
    if (c.who.roles.includes('admin')) return;
    const s = await send(c, 'delete', path.instance(series.A1));
    expect(s.status).toBe(403);
    expectOneAuditRow(s, c, 'delete', {});
  });
});

describe('delete by an admin without clearances', () => {
  const admin: Case = cases.find((c) => c.name === 'admin without clearances')!;
  const cleared: Case = cases.find((c) => c.name === 'clinician cleared for vip and forensic')!;

  it('is 404 for a hidden study, as for a missing one, and deletes nothing', async () => {
    const s = await send(admin, 'delete', path.study('B'));
    expect(s.status).toBe(404);
    expect(s.body.error).toBe('StudyNotFound');
    expect((await send(cleared, 'get', `${path.study('B')}/metadata`, QIDO)).status).toBe(200);
  });

  it('of a study removes only what the admin can see: the hidden series stays, and so does its study', async () => {
    const s = await send(admin, 'delete', path.study('A'));
    expect(s.status).toBe(204);
    expectOneAuditRow(s, admin, 'delete', { studies: [study.A.uid], series: [series.A1.uid], instances: series.A1.instances });
    const left = await send(cleared, 'get', `${path.study('A')}/series`, QIDO);
    expect(tagValues(left.body, '0020000E')).toEqual([series.A2.uid]);
  });
});

describe('break the glass', () => {
  const researcher: Who = { sub: 'res-2', roles: ['researcher'] as Role[] };

  it('is 403 for a researcher and an uploader, and audited', async () => {
    for (const who of [researcher, { sub: 'pacs-2', roles: ['uploader'] as Role[] }]) {
      const before = await lastAuditId();
      const res = await a.as(who).get('/dicom-web/studies').set('X-Break-Glass', 'I would like to see everything please');
      expect(res.status).toBe(403);
      expect(res.body.error).toMatch(/Forbidden|BreakGlassForbidden/);
      const rows = await a.deps.db('audit_events').where('id', '>', before);
      expect(rows).toHaveLength(1);
      expect(rows[0].outcome).toBe('denied');
    }
  });

  it('needs a reason of a few words', async () => {
    const res = await a
      .as({ roles: ['clinician'] })
      .get('/dicom-web/studies')
      .set('X-Break-Glass', 'x');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('BreakGlassReasonMissing');
  });

  it('is found in the audit trail by action=break-glass, with the reason, refused attempts included', async () => {
    const res = await a.as({ roles: ['auditor'] }).get('/api/audit?action=break-glass&user=dr-er');
    expect(res.status).toBe(200);
    expect(res.body.events.length).toBeGreaterThan(10);
    for (const e of res.body.events) {
      expect(e.break_glass).toBe(true);
      expect(e.reason).toBe('unconscious patient in the emergency room');
    }
    const refused = await a.as({ roles: ['auditor'] }).get('/api/audit?action=break-glass&user=res-2');
    expect(refused.body.events).toHaveLength(1);
    expect(refused.body.events[0]).toMatchObject({ outcome: 'denied', status: 403, reason: 'I would like to see everything please' });
  });
});

describe('STOW by an uploader into a study it cannot see', () => {
  it('answers exactly as a store into a new study, and the instance takes on the study labels', async () => {
    const uploader = { sub: 'pacs-3', roles: ['uploader'] as Role[] };
    const into = async (studyUid: string) => {
      const inst = syntheticInstance({ studyUid, Modality: 'MR' });
      const { body, contentType } = multipartBody([inst.bytes]);
      const res = await a.as(uploader).post(`/dicom-web/studies/${studyUid}`).set('Content-Type', contentType).send(body);
      return { res, inst };
    };
    const hidden = await into(study.B.uid);
    const fresh = uid();
    const other = await into(fresh);
    expect(hidden.res.status).toBe(other.res.status);
    const norm = (text: string, i: { studyUid: string; seriesUid: string; sopInstanceUid: string }) =>
      text
        .replace(/http:\/\/127\.0\.0\.1:\d+/g, 'BASE')
        .replaceAll(i.studyUid, 'STUDY')
        .replaceAll(i.seriesUid, 'SERIES')
        .replaceAll(i.sopInstanceUid, 'SOP');
    expect(norm(hidden.res.text, hidden.inst)).toBe(norm(other.res.text, other.inst));
    // Stored into B, so hidden as B is from a clinician without the vip clearance.
    const plain = await a
      .as({ roles: ['clinician'] })
      .get(`/dicom-web/studies/${study.B.uid}/series/${hidden.inst.seriesUid}/instances/${hidden.inst.sopInstanceUid}/metadata`);
    expect(plain.status).toBe(404);
    const vip = await a
      .as({ roles: ['clinician'], clearances: ['vip'] })
      .get(`/dicom-web/studies/${study.B.uid}/series/${hidden.inst.seriesUid}/instances/${hidden.inst.sopInstanceUid}/metadata`);
    expect(vip.status).toBe(200);
    // An uploader never reads, not even what it stored.
    expect((await a.as(uploader).get(`/dicom-web/studies/${fresh}/metadata`)).status).toBe(403);
  });
});

describe('frames of a visible instance', () => {
  it('come back as stored for a cleared caller', async () => {
    const c = cases.find((x) => x.name === 'clinician cleared for vip and forensic')!;
    const res = await a
      .as(c.who)
      .get(`${path.instance(series.B1)}/frames/1`)
      .set('Accept', OCTET)
      .buffer(true)
      .parse(binaryParser);
    expect(res.status).toBe(200);
    const parts = parseMultipart(res.body, res.headers['content-type']);
    expect(parts[0].body.length).toBe(40 * 40);
  });
});
