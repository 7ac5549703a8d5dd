// QIDO-RS checks (PS3.18 §10.6), exact assertions on the synthetic studies.
import { assert, DICOM_JSON, expectStatus, first, get, jsonArray, pnAlpha, sameSet, uidsOf, values, type Check, type Ctx } from './http.js';

const q = async (ctx: Ctx, path: string) => jsonArray(await get(ctx, path, DICOM_JSON));

/** Query and assert the set of UIDs (tag) returned. */
async function expectUids(ctx: Ctx, path: string, tag: string, expected: string[]): Promise<string> {
  const items = await q(ctx, path);
  sameSet(uidsOf(items, tag), expected, path);
  return `${items.length} result(s)`;
}

// chrJapMulti.dcm: SpecificCharacterSet "\ISO 2022 IR 87"; PatientName bytes are
// ESC$B "$d$^$@" ESC(B "^" ESC$B "$?$m$&" ESC(B: one component group (JIS X 0208 hiragana),
// i.e. only an Alphabetic value; the file has no Ideographic or Phonetic group.
export const JAPANESE: Record<string, string> = { Alphabetic: 'やまだ^たろう' };

export function checkJapaneseName(item: any, where: string): void {
  const pn = first(item, '00100010') ?? {};
  for (const k of ['Alphabetic', 'Ideographic', 'Phonetic']) {
    const want = JAPANESE[k];
    assert((pn[k] || undefined) === want, `${where}: PatientName ${k} is ${JSON.stringify(pn[k])}, expected ${want ?? 'absent'}`);
  }
}

export const qidoChecks: Check[] = [
  {
    name: 'QIDO §10.6.1 GET /studies?PatientID= exact match',
    run: (ctx) => expectUids(ctx, `/studies?PatientID=${ctx.syn.patientId}`, '0020000D', [ctx.syn.studyA, ctx.syn.studyB]),
  },
  {
    name: 'QIDO §10.6.1 GET /series (all-studies series search) with PatientID',
    run: (ctx) => {
      const s = ctx.syn;
      return expectUids(ctx, `/series?PatientID=${s.patientId}`, '0020000E', [s.seriesA1, s.seriesA2, s.b1.series]);
    },
  },
  {
    name: 'QIDO §10.6.1 GET /instances (all-studies instance search) with PatientID',
    run: (ctx) => {
      const s = ctx.syn;
      return expectUids(ctx, `/instances?PatientID=${s.patientId}`, '00080018', [s.a1.sop, s.a2.sop, s.a3.sop, s.b1.sop]);
    },
  },
  {
    name: 'QIDO §10.6.1 GET /studies/{study}/series',
    run: (ctx) => expectUids(ctx, `/studies/${ctx.syn.studyA}/series`, '0020000E', [ctx.syn.seriesA1, ctx.syn.seriesA2]),
  },
  {
    name: 'QIDO §10.6.1 GET /studies/{study}/instances',
    run: (ctx) => {
      const s = ctx.syn;
      return expectUids(ctx, `/studies/${s.studyA}/instances`, '00080018', [s.a1.sop, s.a2.sop, s.a3.sop]);
    },
  },
  {
    name: 'QIDO §10.6.1 GET /studies/{study}/series/{series}/instances',
    run: (ctx) => {
      const s = ctx.syn;
      return expectUids(ctx, `/studies/${s.studyA}/series/${s.seriesA1}/instances`, '00080018', [s.a1.sop, s.a2.sop]);
    },
  },
  {
    name: 'QIDO §8.3.4.1 query key by tag (00100020=)',
    run: (ctx) => expectUids(ctx, `/studies?00100020=${ctx.syn.patientId}`, '0020000D', [ctx.syn.studyA, ctx.syn.studyB]),
  },
  {
    name: 'QIDO §8.3.4.6 PatientName single value match with ^ component separator',
    run: (ctx) => expectUids(ctx, `/studies?PatientName=${encodeURIComponent(ctx.syn.patientName)}`, '0020000D', [ctx.syn.studyA, ctx.syn.studyB]),
  },
  {
    name: 'QIDO §8.3.4.6 PatientName wildcard *',
    run: async (ctx) => {
      const s = ctx.syn,
        both = [s.studyA, s.studyB];
      await expectUids(ctx, `/studies?PatientName=${encodeURIComponent(`Cnfx${s.token}*`)}`, '0020000D', both);
      return expectUids(ctx, `/studies?PatientName=${encodeURIComponent(`*${s.token}*`)}`, '0020000D', both);
    },
  },
  {
    name: 'QIDO §8.3.4.6 PatientName wildcard ?',
    run: async (ctx) => {
      const s = ctx.syn,
        both = [s.studyA, s.studyB];
      await expectUids(ctx, `/studies?PatientName=${encodeURIComponent(`Cnfx${s.token.slice(0, -1)}?*`)}`, '0020000D', both);
      return expectUids(ctx, `/studies?PatientName=${encodeURIComponent(`Cnfx${s.token}^Alic?`)}`, '0020000D', both);
    },
  },
  {
    name: 'QIDO §8.3.4.6 PatientName wildcard case-insensitive (PS3.4 C.2.2.2.1 PN)',
    run: (ctx) =>
      expectUids(ctx, `/studies?PatientName=${encodeURIComponent(`cnfx${ctx.syn.token.toLowerCase()}*`)}`, '0020000D', [ctx.syn.studyA, ctx.syn.studyB]),
  },
  {
    name: 'QIDO §8.3.4.6 StudyDate range a-b, a-, -b',
    run: async (ctx) => {
      const s = ctx.syn,
        p = `/studies?PatientID=${s.patientId}&StudyDate=`;
      await expectUids(ctx, p + '20010101-20011231', '0020000D', [s.studyA]);
      await expectUids(ctx, p + '20010203-20050607', '0020000D', [s.studyA, s.studyB]);
      await expectUids(ctx, p + '20030101-', '0020000D', [s.studyB]);
      await expectUids(ctx, p + '-20030101', '0020000D', [s.studyA]);
      await expectUids(ctx, p + '20050607', '0020000D', [s.studyB]);
    },
  },
  {
    name: 'QIDO §8.3.4.6 StudyInstanceUID list (comma and backslash separated)',
    run: async (ctx) => {
      const s = ctx.syn;
      await expectUids(ctx, `/studies?StudyInstanceUID=${s.studyA},${s.studyB}`, '0020000D', [s.studyA, s.studyB]);
      await expectUids(ctx, `/studies?StudyInstanceUID=${s.studyA}%5C${s.studyB}`, '0020000D', [s.studyA, s.studyB]);
    },
  },
  {
    name: 'QIDO §10.6.1 ModalitiesInStudy matching',
    run: async (ctx) => {
      const s = ctx.syn,
        p = `/studies?PatientID=${s.patientId}&ModalitiesInStudy=`;
      await expectUids(ctx, p + 'CT', '0020000D', [s.studyA]);
      await expectUids(ctx, p + 'MR', '0020000D', [s.studyA]);
      await expectUids(ctx, p + 'OT', '0020000D', [s.studyB]);
    },
  },
  {
    name: 'QIDO §10.6.3 study return attributes 00201206, 00201208, 00080061, 00081190 and matched values',
    run: async (ctx) => {
      const s = ctx.syn;
      const [st] = await q(ctx, `/studies?StudyInstanceUID=${s.studyA}`);
      assert(st, 'study not found');
      const chk = (tag: string, exp: unknown) => assert(String(first(st, tag)) === String(exp), `${tag} is ${JSON.stringify(st[tag])}, expected ${exp}`);
      chk('00201206', 2);
      chk('00201208', 3);
      sameSet(values(st, '00080061').map(String), ['CT', 'MR'], '00080061 ModalitiesInStudy');
      chk('00100020', s.patientId);
      chk('00080050', s.accession);
      chk('00080020', '20010203');
      assert(String(first(st, '00080030')).startsWith('101112'), `00080030 StudyTime is ${JSON.stringify(st['00080030'])}`);
      assert(pnAlpha(st) === s.patientName, `PatientName is ${JSON.stringify(st['00100010'])}`);
      const url = String(first(st, '00081190') ?? '');
      assert(url.endsWith(`/studies/${s.studyA}`), `00081190 RetrieveURL "${url}"`);
    },
  },
  {
    name: 'QIDO §10.6.3 series/instance return attributes (00201209, 00080060, 00081190)',
    run: async (ctx) => {
      const s = ctx.syn;
      const series = await q(ctx, `/studies/${s.studyA}/series?SeriesInstanceUID=${s.seriesA1}`);
      assert(series.length === 1, `${series.length} series`);
      assert(String(first(series[0], '00201209')) === '2', `00201209 is ${JSON.stringify(series[0]['00201209'])}`);
      assert(first(series[0], '00080060') === 'MR', 'Modality 00080060 missing');
      assert(String(first(series[0], '00081190') ?? '').endsWith(`/series/${s.seriesA1}`), 'series 00081190 RetrieveURL');
      const inst = await q(ctx, `/studies/${s.studyA}/instances?SOPInstanceUID=${s.a3.sop}`);
      assert(inst.length === 1, `${inst.length} instances`);
      assert(first(inst[0], '00080016') === s.a3.sopClass, '00080016 SOPClassUID');
      assert(String(first(inst[0], '00081190') ?? '').endsWith(`/instances/${s.a3.sop}`), 'instance 00081190 RetrieveURL');
    },
  },
  {
    name: 'QIDO §8.3.4.3 includefield by keyword, by tag, and all',
    run: async (ctx) => {
      const s = ctx.syn,
        p = `/studies?StudyInstanceUID=${s.studyA}&includefield=`;
      const want = `Conformance study A ${s.token}`;
      for (const v of ['StudyDescription', '00081030', 'all']) {
        const [st] = await q(ctx, p + v);
        assert(st && first(st, '00081030') === want, `includefield=${v}: 00081030 is ${JSON.stringify(st?.['00081030'])}`);
      }
    },
  },
  {
    name: 'QIDO §8.3.4.4 limit and offset',
    run: async (ctx) => {
      const s = ctx.syn,
        p = `/studies/${s.studyA}/instances?`;
      const all = uidsOf(await q(ctx, p), '00080018');
      assert(all.length === 3, `unpaged: ${all.length}`);
      const pg1 = await q(ctx, p + 'limit=2');
      const pg2 = await q(ctx, p + 'limit=2&offset=2');
      assert(pg1.length === 2, `limit=2 gave ${pg1.length}`);
      assert(pg2.length === 1, `limit=2&offset=2 gave ${pg2.length}`);
      sameSet([...uidsOf(pg1, '00080018'), ...uidsOf(pg2, '00080018')], all, 'pages together');
      const none = await q(ctx, p + 'offset=3');
      assert(none.length === 0, `offset=3 gave ${none.length}`);
    },
  },
  {
    name: 'QIDO §10.6.3 empty result → 200 [] (or 204)',
    run: async (ctx) => {
      const r = await get(ctx, `/studies?PatientID=NOPE${ctx.syn.token}`, DICOM_JSON);
      expectStatus(r, 200, 204);
      const items = jsonArray(r);
      assert(items.length === 0, `${items.length} results`);
      const how = r.status === 204 ? '204 No Content' : '200 with []';
      ctx.notes.push(`empty QIDO result: ${how}`);
      return how;
    },
  },
  {
    name: 'QIDO §8.3.4 unknown query key → 400',
    run: async (ctx) => expectStatus(await get(ctx, '/studies?NoSuchAttributeXyz=1', DICOM_JSON), 400),
  },
  {
    name: 'QIDO §10.6.3 ISO 2022 IR 87 Japanese PatientName decoded (chrJapMulti)',
    run: async (ctx) => {
      const [st] = await q(ctx, `/studies?StudyInstanceUID=${ctx.samples['chrJapMulti.dcm'].study}`);
      assert(st, 'chrJapMulti study not found');
      checkJapaneseName(st, 'QIDO');
    },
  },
  {
    name: 'QIDO §10.6.3 ISO_IR 100 PatientName (chrGerm) decoded to UTF-8',
    run: async (ctx) => {
      const [st] = await q(ctx, `/studies?StudyInstanceUID=${ctx.samples['chrGerm.dcm'].study}`);
      assert(st, 'chrGerm study not found');
      assert(pnAlpha(st) === 'Äneas^Rüdiger', `PatientName is ${JSON.stringify(st['00100010'])}`);
    },
  },
];
