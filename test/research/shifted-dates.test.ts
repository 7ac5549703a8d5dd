import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller, type Caller } from '../../server/access.js';
import { createApp } from '../../server/app.js';
import { Research } from '../../server/deid/research.js';
import { parseDeidViews } from '../../server/deid/settings.js';
import { searchQuery, type Match, type SearchSpec } from '../../server/db/search.js';
import { Tag } from '../../server/dicom/tags.js';
import { binaryParser, createTestArchive, multipartBody, type TestArchive, type Who } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// A researcher sees every date of a patient moved back by that patient's
// keyed shift (Modified Dates) and queries by the dates it sees: single
// dates, closed and open ranges, at each QIDO level, with other keys, paged.
// What matches is exactly what its answers show, whatever each patient's
// shift; the dates as stored find only what their shifted value matches.

const RESEARCHER: Who = { sub: 'res-1', roles: ['researcher'] };
const CLINICIAN: Who = { sub: 'dr-1', roles: ['clinician'] };
const KEY = 'a-test-deid-key-that-is-long-enough-0123';
const DEID = { key: KEY, views: parseDeidViews('researcher=modified-dates', undefined) };

type Attrs = Record<string, { vr: string; Value?: unknown[] }>;

/** Studies of four patients (one with no Patient ID), two with the same stored date, one with no calendar date. */
const DEFS = [
  { PatientID: 'PAT-A', PatientName: 'Alpha^Ann', StudyDate: '20200110', PerformedProcedureStepStartDate: '20200110', Modality: 'CT' },
  { PatientID: 'PAT-A', PatientName: 'Alpha^Ann', StudyDate: '20210601', PerformedProcedureStepStartDate: '20210602', Modality: 'MR' },
  { PatientID: 'PAT-B', PatientName: 'Bravo^Bob', StudyDate: '20200110', PerformedProcedureStepStartDate: '20200111', Modality: 'CT' },
  { PatientID: 'PAT-B', PatientName: 'Bravo^Bob', StudyDate: '20190228', PerformedProcedureStepStartDate: '20190228', Modality: 'MR' },
  { PatientID: 'PAT-C', PatientName: 'Charlie^Cy', StudyDate: '20240229', PerformedProcedureStepStartDate: '20240301', Modality: 'CT' },
  { PatientID: 'PAT-C', PatientName: 'Charlie^Cy', StudyDate: '20151231', PerformedProcedureStepStartDate: '20160101', Modality: 'CT' },
  { PatientID: '', PatientName: 'Nameonly^Nora', StudyDate: '20200505', PerformedProcedureStepStartDate: '20200505', Modality: 'MR' },
  { PatientID: 'PAT-D', PatientName: 'Delta^Dee', StudyDate: '20230231', PerformedProcedureStepStartDate: '20230230', Modality: 'CT' },
];
const STUDIES = DEFS.map((def) => ({ def, ...syntheticInstance({ ...def, BurnedInAnnotation: 'NO' }) }));
/** Whether a stored date is a calendar date (20230231 is not). */
const calendar = (da: string) => !['20230231', '20230230'].includes(da);

let a: TestArchive;
const get = (who: Who, url: string, app = a) => app.as(who).get(url).set('Accept', 'application/dicom+json').buffer(true).parse(binaryParser);
const json = (r: { body: Buffer }) => JSON.parse(r.body.toString('utf8')) as Attrs[];
const first = (x: Attrs, tag: string) => x[tag]?.Value?.[0] as string | undefined;
const researcherCaller = (): Caller => newCaller({ sub: 'x', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' });
const view = () => a.deps.research!.viewOf(researcherCaller())!;
const pseudo = (uid: string) => view().deidentifier.uid(uid);

/** Each study as the researcher sees it: pseudonymous UID → shown study date (undefined when none is shown). */
let shown: Map<string, string | undefined>;

/** The studies (pseudonymous UIDs) a researcher's QIDO returns, sorted. */
async function found(url: string): Promise<string[]> {
  const r = await get(RESEARCHER, url);
  expect(r.status, url).toBe(200);
  return json(r)
    .map((x) => first(x, Tag.StudyInstanceUID)!)
    .sort();
}

/** The studies whose shown date lies in [from, to] (either open), sorted. */
function expected(from?: string, to?: string): string[] {
  return [...shown]
    .filter(([, d]) => d !== undefined && (from === undefined || d >= from) && (to === undefined || d <= to))
    .map(([uid]) => uid)
    .sort();
}

/** `YYYYMMDD` plus `days`. */
function plus(da: string, days: number): string {
  const d = new Date(Date.UTC(+da.slice(0, 4), +da.slice(4, 6) - 1, +da.slice(6, 8) + days));
  return d.toISOString().slice(0, 10).replaceAll('-', '');
}

beforeAll(async () => {
  a = await createTestArchive({ deid: DEID });
  const m = multipartBody(STUDIES.map((s) => s.bytes));
  expect((await a.request.post('/dicom-web/studies').set('Content-Type', m.contentType).send(m.body)).status).toBe(200);
  const all = json(await get(RESEARCHER, '/dicom-web/studies'));
  expect(all).toHaveLength(STUDIES.length);
  shown = new Map(all.map((x) => [first(x, Tag.StudyInstanceUID)!, first(x, Tag.StudyDate) ?? undefined]));
});
afterAll(async () => {
  await a?.close();
});

describe('the dates a researcher is shown', () => {
  it("are each study's date moved back by its own patient's shift, and no date where the stored one is no calendar date", () => {
    const d = view().deidentifier;
    for (const s of STUDIES) {
      const patient: Attrs = s.def.PatientID
        ? { '00100020': { vr: 'LO', Value: [s.def.PatientID] } }
        : { '00100010': { vr: 'PN', Value: [{ Alphabetic: s.def.PatientName }] } };
      const want = calendar(s.def.StudyDate) ? plus(s.def.StudyDate, -d.shiftDays(patient as never)) : undefined;
      expect(shown.get(pseudo(s.studyUid)), s.studyUid).toBe(want);
    }
  });
});

describe('QIDO by shifted dates', () => {
  it('finds each study by the single date it is shown, and only the studies shown on that date', async () => {
    for (const [uid, date] of shown) {
      if (date === undefined) continue;
      const hits = await found(`/dicom-web/studies?StudyDate=${date}`);
      expect(hits).toContain(uid);
      expect(hits).toEqual(expected(date, date));
    }
  });

  it('matches closed and open ranges exactly, whatever each patient shift', async () => {
    const dates = [...new Set([...shown.values()].filter((d): d is string => d !== undefined))].sort();
    const ranges: [string | undefined, string | undefined][] = [];
    for (let i = 0; i < dates.length; i++) {
      ranges.push([dates[i], undefined], [undefined, dates[i]], [plus(dates[i], 1), undefined], [undefined, plus(dates[i], -1)]);
      for (let j = i; j < dates.length; j++) ranges.push([dates[i], dates[j]]);
    }
    for (const [from, to] of ranges) {
      const q = `${from ?? ''}-${to ?? ''}`;
      expect(await found(`/dicom-web/studies?StudyDate=${q}`), q).toEqual(expected(from, to));
    }
  });

  it('finds by an original stored date only the studies whose shown date it is', async () => {
    for (const s of STUDIES.filter((x) => calendar(x.def.StudyDate))) {
      const stored = s.def.StudyDate;
      const hits = await found(`/dicom-web/studies?StudyDate=${stored}`);
      expect(hits, stored).toEqual(expected(stored, stored));
      expect(hits).not.toContain(pseudo(s.studyUid));
    }
    // The stored range of every study finds only those shown inside it.
    expect(await found('/dicom-web/studies?StudyDate=20151231-20240229')).toEqual(expected('20151231', '20240229'));
    expect(expected('20151231', '20240229').length).toBeLessThan(STUDIES.length - 1);
  });

  it('combines a shifted date with other keys', async () => {
    const dates = [...shown.values()].filter((d): d is string => d !== undefined).sort();
    const [from, to] = [dates[0], dates[dates.length - 1]];
    const ct = STUDIES.filter((s) => s.def.Modality === 'CT').map((s) => pseudo(s.studyUid));
    const hits = await found(`/dicom-web/studies?StudyDate=${from}-${to}&ModalitiesInStudy=CT`);
    expect(hits).toEqual(expected(from, to).filter((u) => ct.includes(u)));
    expect(hits.length).toBeGreaterThan(0);
    // With the patient pseudonym it was shown.
    const [annFirst] = json(await get(RESEARCHER, `/dicom-web/studies?StudyInstanceUID=${pseudo(STUDIES[0].studyUid)}`));
    const patient = first(annFirst, Tag.PatientID)!;
    const annDate = shown.get(pseudo(STUDIES[0].studyUid))!;
    expect(await found(`/dicom-web/studies?PatientID=${patient}&StudyDate=${annDate}`)).toEqual([pseudo(STUDIES[0].studyUid)]);
    expect(await found(`/dicom-web/studies?PatientID=${patient}&StudyDate=-${plus(annDate, -1)}`)).toEqual([]);
  });

  it('pages over shifted matches with the right count of remaining results', async () => {
    const all = expected(undefined, '99991231');
    expect(all.length).toBeGreaterThanOrEqual(5);
    const seen: string[] = [];
    for (let offset = 0; offset < all.length; offset += 2) {
      const r = await get(RESEARCHER, `/dicom-web/studies?StudyDate=-99991231&limit=2&offset=${offset}`);
      const page = json(r).map((x) => first(x, Tag.StudyInstanceUID)!);
      expect(page).toHaveLength(Math.min(2, all.length - offset));
      seen.push(...page);
      const left = all.length - offset - page.length;
      if (left > 0) expect(String(r.headers.warning)).toContain(`There are ${left} additional results`);
      else expect(r.headers.warning).toBeUndefined();
    }
    expect(seen.sort()).toEqual(all);
  });

  it('matches the shifted study date at series and instance level, and series dates by their own shift', async () => {
    const dates = [...shown.values()].filter((d): d is string => d !== undefined).sort();
    const [from, to] = [dates[1], dates[dates.length - 2]];
    const studiesOf = (xs: Attrs[]) => [...new Set(xs.map((x) => first(x, Tag.StudyInstanceUID)!))].sort();
    expect(studiesOf(json(await get(RESEARCHER, `/dicom-web/series?StudyDate=${from}-${to}`)))).toEqual(expected(from, to));
    expect(studiesOf(json(await get(RESEARCHER, `/dicom-web/instances?StudyDate=${from}-${to}`)))).toEqual(expected(from, to));
    // Performed Procedure Step Start Date: each series found by the date it is shown, which moves by its patient's shift.
    for (const s of STUDIES) {
      if (!calendar(s.def.StudyDate)) continue;
      const [series] = json(await get(RESEARCHER, `/dicom-web/studies/${pseudo(s.studyUid)}/series`));
      const pps = first(series, Tag.PerformedProcedureStepStartDate)!;
      expect(pps).toBe(plus(s.def.PerformedProcedureStepStartDate, -daysBetween(s.def.StudyDate, shown.get(pseudo(s.studyUid))!)));
      const hits = json(await get(RESEARCHER, `/dicom-web/series?PerformedProcedureStepStartDate=${pps}`)).map((x) => first(x, Tag.SeriesInstanceUID));
      expect(hits).toContain(pseudo(s.seriesUid));
      expect(
        json(await get(RESEARCHER, `/dicom-web/studies/${pseudo(s.studyUid)}/series?PerformedProcedureStepStartDate=${s.def.PerformedProcedureStepStartDate}`)),
      ).toEqual([]);
    }
  });

  it('gives a clinician the stored dates, and the stored dates match for a clinician as before', async () => {
    const r = json(await get(CLINICIAN, '/dicom-web/studies?StudyDate=20200110'));
    expect(r.map((x) => first(x, Tag.StudyInstanceUID)).sort()).toEqual([STUDIES[0].studyUid, STUDIES[2].studyUid].sort());
  });
});

describe('the SQL of a date query', () => {
  const spec = (matches: Match[]): SearchSpec => ({
    level: 'study',
    matches,
    scope: {},
    limit: 10,
    offset: 0,
    load: { study: true, studyCounts: true, series: false, seriesCount: false, metadata: false },
  });
  const range: Match = { tag: Tag.StudyDate, cond: { op: 'range', from: '20200101', to: '20201231' } };

  it('is unchanged for a caller without a view: the same matches, compared with the stored column, no shift computed', () => {
    const clinician = newCaller({ sub: 'c', roles: ['clinician'], clearances: [] }, { protocol: 'cli', command: 'test' });
    const matches = [range];
    expect(a.deps.research!.searchMatches(clinician, matches)).toBe(matches);
    const sql = searchQuery(a.deps.db, clinician, spec(matches)).toSQL().sql;
    expect(sql).toContain('"s"."study_date" >= ? and "s"."study_date" <= ?');
    expect(sql).not.toContain('sha256');
  });

  it('computes the patient shift for a researcher, with the key as parameters, within index-friendly bounds', () => {
    const caller = researcherCaller();
    const [m] = a.deps.research!.searchMatches(caller, [range]);
    expect(m.cond.op).toBe('shifted');
    const q = searchQuery(a.deps.db, caller, spec([m])).toSQL();
    expect(q.sql).toContain('sha256');
    expect(q.sql).not.toContain(KEY);
    expect(q.sql).toContain('"s"."study_date" >= ?');
    expect(q.bindings).toContain('20200102');
    expect(q.bindings).toContain(plus('20201231', 3650));
  });
});

describe('other date options', () => {
  /** This archive's data, under another researcher view (a replica configured otherwise). */
  const under = (profile: string) => {
    const deid = { key: KEY, views: parseDeidViews(`researcher=${profile}`, undefined) };
    const research = new Research(deid, KEY);
    const app = createApp({ ...a.deps, research, presenter: research.presenter });
    return (url: string) =>
      supertest(app.callback())
        .get(url)
        .set('Authorization', `Bearer ${a.token(RESEARCHER)}`)
        .set('Accept', 'application/dicom+json')
        .buffer(true)
        .parse(binaryParser);
  };

  it('with full dates, shows and matches the dates as stored', async () => {
    const r = await under('full-dates')('/dicom-web/studies?StudyDate=20200110');
    expect(r.status).toBe(200);
    const hits = json(r);
    expect(hits).toHaveLength(2);
    for (const x of hits) expect(first(x, Tag.StudyDate)).toBe('20200110');
    expect(json(await under('full-dates')('/dicom-web/studies?StudyDate=20200101-20201231'))).toHaveLength(3);
  });

  it('with dates removed (Basic Profile alone), a date key matches nothing: no study shows a date', async () => {
    const get = under('basic');
    const all = json(await get('/dicom-web/studies'));
    expect(all).toHaveLength(STUDIES.length);
    for (const x of all) expect(x[Tag.StudyDate]?.Value).toBeUndefined();
    for (const q of ['20200110', '20200101-', '-20991231']) expect(json(await get(`/dicom-web/studies?StudyDate=${q}`)), q).toEqual([]);
    // Universal matching still returns everything.
    expect(json(await get('/dicom-web/studies?StudyDate='))).toHaveLength(STUDIES.length);
  });
});

function daysBetween(later: string, earlier: string): number {
  const t = (d: string) => Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8));
  return Math.round((t(later) - t(earlier)) / 86_400_000);
}
