import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeInstance } from '../../server/archive.js';
import { newCaller, visibilityValues, visible, visibleText, type Caller, type IndexPath } from '../../server/access.js';
import { prepared } from '../../server/db/knex.js';
import { createTestArchive, type TestArchive } from '../helpers.js';
import { syntheticInstance } from '../synthetic.js';

// The visibility rule is written once (server/access.ts) and reaches SQL in
// two forms: a knex raw condition with `?` bindings, and fixed text with `$n`
// parameters for prepared statements. Both are evaluated here by PostgreSQL
// on the same rows, for every combination of study labels, series labels,
// clearances and break-glass, against the rule as the README states it.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

const LABEL_SETS: string[][] = [[], ['vip'], ['forensic'], ['forensic', 'vip']];

function callerWith(clearances: string[], breakGlass?: string): Caller {
  return newCaller({ sub: 'rule-test', roles: ['clinician'], clearances }, { protocol: 'cli', command: 'rule test' }, breakGlass);
}
const CALLERS = LABEL_SETS.flatMap((clearances) => [callerWith(clearances), callerWith(clearances, 'unconscious patient in the emergency room')]);

// Every study row × every series row × one instance row, as constant tables.
const arrayLiteral = (labels: string[]) => `'{${labels.join(',')}}'::text[]`;
// None of them rejected: the rule's rejection part is covered on its own below.
const ROWS = `with st(id, labels, study_uid, has_rejected) as (values ${LABEL_SETS.map((l, i) => `(${i}, ${arrayLiteral(l)}, '1.${i}', false)`).join(', ')}),
  se(id, labels, series_uid, has_rejected) as (values ${LABEL_SETS.map((l, i) => `(${i}, ${arrayLiteral(l)}, '2.${i}', false)`).join(', ')}),
  i(id, rejected) as (values (0, false))
  select st.id as st, se.id as se from st cross join se cross join i where`;

type Pair = [number, number];
const sorted = (rows: { st: number; se: number }[]): Pair[] => rows.map((r): Pair => [r.st, r.se]).sort((x, y) => x[0] - y[0] || x[1] - y[1]);

/** The rule in words: every label of the rows it looks at is among the clearances, or the glass is broken. */
function expected(caller: Caller, rows: ('st' | 'se')[]): Pair[] {
  const out: Pair[] = [];
  for (const [st, stLabels] of LABEL_SETS.entries()) {
    for (const [se, seLabels] of LABEL_SETS.entries()) {
      const labels = [...(rows.includes('st') ? stLabels : []), ...(rows.includes('se') ? seLabels : [])];
      if (caller.breakGlass !== undefined || labels.every((l) => caller.principal.clearances.includes(l))) out.push([st, se]);
    }
  }
  return out;
}

async function viaKnex(path: IndexPath, caller: Caller): Promise<Pair[]> {
  const r = await a.deps.db.raw(`${ROWS} ?`, [visible(a.deps.db, path, caller)]);
  return sorted(r.rows);
}

async function viaPrepared(name: string, path: IndexPath & { checked?: undefined }, caller: Caller): Promise<Pair[]> {
  return sorted(await prepared<{ st: number; se: number }>(a.deps.db, `cairn_test_rule_${name}`, `${ROWS} ${visibleText(path, 1)}`, visibilityValues(caller)));
}

const WHOLE: [string, IndexPath & { checked?: undefined }, ('st' | 'se')[]][] = [
  ['study', { study: 'st' }, ['st']],
  ['series', { study: 'st', series: 'se' }, ['st', 'se']],
  ['instance', { study: 'st', series: 'se', instance: 'i' }, ['st', 'se']],
];

describe('the visibility rule, as knex condition and as prepared text', () => {
  it.each(WHOLE)('on a whole path down to the %s, both forms select exactly the rows the rule allows, for every caller', async (name, path, rows) => {
    for (const caller of CALLERS) {
      const want = expected(caller, rows);
      const why = `clearances ${JSON.stringify(caller.principal.clearances)}, glass ${caller.breakGlass !== undefined}`;
      expect(await viaKnex(path, caller), why).toEqual(want);
      expect(await viaPrepared(name, path, caller), why).toEqual(want);
    }
  });

  it('the parts an enclosing query leaves to a count (series of a checked study, instances of a checked series) add up to the whole rule', async () => {
    for (const caller of CALLERS) {
      const study = await viaKnex({ study: 'st' }, caller);
      const seriesBelow = await viaKnex({ study: 'st', series: 'se', checked: 'study' }, caller);
      const instancesBelow = await viaKnex({ study: 'st', series: 'se', instance: 'i', checked: 'series' }, caller);
      const key = (p: Pair) => p.join('/');
      const both = study.filter((p) => seriesBelow.some((q) => key(q) === key(p)) && instancesBelow.some((q) => key(q) === key(p)));
      expect(seriesBelow).toEqual(expected(caller, ['se']));
      expect(both).toEqual(await viaKnex({ study: 'st', series: 'se', instance: 'i' }, caller));
    }
  });

  it("keeps the caller's values out of the text: one text per path, whoever asks", () => {
    const texts = new Set(CALLERS.map((c) => visible(a.deps.db, { study: 's', series: 'se', instance: 'i' }, c).toSQL().sql));
    expect(texts.size).toBe(1);
    const [text] = texts;
    expect(text).not.toMatch(/vip|forensic|true|false/);
    expect(visibleText({ study: 's', series: 'se' }, 4)).toBe(visibleText({ study: 's', series: 'se' }, 4));
    expect(visibleText({ study: 's', series: 'se' }, 4)).toMatch(/\$4\b.*\$5\b.*\$6\b/);
    expect(visibleText({ study: 's', series: 'se' }, 4)).not.toMatch(/\$[0-37-9]/);
  });

  it('refuses a table alias that is not a plain name, rather than splice it', () => {
    expect(() => visible(a.deps.db, { study: 's; drop table studies' }, callerWith([]))).toThrow(/alias/);
    expect(() => visibleText({ study: 'st', series: 'se', instance: 'i"' }, 1)).toThrow(/alias/);
  });
});

describe('the visibility rule on rejected instances (IHE IOCM)', () => {
  // Rows as constant tables again; the look for a live instance below a
  // hinted study or series reads the real instances table, where one live
  // instance is stored (study 1.live, series 2.live).
  let live: { studyUid: string; seriesUid: string };
  beforeAll(async () => {
    const s = syntheticInstance();
    const admin = newCaller({ sub: 'rule-test', roles: ['admin'], clearances: [] }, { protocol: 'cli', command: 'rule test' });
    const o = await storeInstance({ ...a.deps, log: () => undefined }, admin, Readable.from([s.bytes]));
    expect(o.ok).toBe(true);
    live = { studyUid: s.studyUid, seriesUid: s.seriesUid };
  });

  // [name, study uid, has_rejected]: a study or series without the hint, one with the hint and a live instance, one with the hint and none.
  const rows = () => ({
    st: [
      ['plain', '1.1', false],
      ['hinted-live', live.studyUid, true],
      ['hinted-dead', '1.3', true],
    ] as const,
    se: [
      ['plain', '2.1', false],
      ['hinted-live', live.seriesUid, true],
      ['hinted-dead', '2.3', true],
    ] as const,
  });
  const table = (name: string, key: string, list: readonly (readonly [string, string, boolean])[]) =>
    `${name}(id, labels, ${key}, has_rejected) as (values ${list.map(([id, u, h]) => `('${id}', '{}'::text[], '${u}', ${h})`).join(', ')})`;
  const query = () =>
    `with ${table('st', 'study_uid', rows().st)}, ${table('se', 'series_uid', rows().se)}, i(id, rejected) as (values ('live', false), ('rejected', true))
     select st.id as st, se.id as se, i.id as i from st cross join se cross join i where`;
  const run = async (path: IndexPath & { checked?: undefined }, caller: Caller, name: string): Promise<Set<string>> => {
    const viaK = (await a.deps.db.raw(`${query()} ?`, [visible(a.deps.db, path, caller)])).rows;
    const viaP = await prepared(a.deps.db, `cairn_test_rejected_${name}`, `${query()} ${visibleText(path, 1)}`, visibilityValues(caller));
    expect(viaP).toEqual(viaK);
    return new Set(viaK.map((r: { st: string; se: string; i: string }) => `${r.st}/${r.se}/${r.i}`));
  };
  const callers = () =>
    [
      ['a cleared caller', callerWith([])],
      ['a caller who broke the glass', callerWith([], 'unconscious patient in the emergency room')],
    ] as const;

  it('hides a rejected instance from every caller, the glass broken or not', async () => {
    for (const [who, caller] of callers()) {
      const seen = await run({ study: 'st', series: 'se', instance: 'i' }, caller, 'instance');
      expect(
        [...seen].some((k) => k.endsWith('/rejected')),
        who,
      ).toBe(false);
      expect(seen.size, who).toBe(9);
    }
  });

  it('hides a series or study with the hint unless it still holds a live instance', async () => {
    for (const [who, caller] of callers()) {
      const series = await run({ study: 'st', series: 'se' }, caller, 'series');
      expect(
        [...series].filter((k) => k.endsWith('/live')).map((k) => k.split('/')[1]),
        who,
      ).toEqual(expect.arrayContaining(['plain', 'hinted-live']));
      expect(
        [...series].some((k) => k.split('/')[1] === 'hinted-dead'),
        who,
      ).toBe(false);
      const studies = await run({ study: 'st' }, caller, 'study');
      expect(new Set([...studies].map((k) => k.split('/')[0])), who).toEqual(new Set(['plain', 'hinted-live']));
    }
  });

  it('shows rejected rows to a caller that asked to include them, and to no other', async () => {
    const including = newCaller({ sub: 'rule-test', roles: ['admin'], clearances: [] }, { protocol: 'cli', command: 'rule test' }, undefined, {
      includeRejected: true,
    });
    expect((await run({ study: 'st', series: 'se', instance: 'i' }, including, 'instance')).size).toBe(18);
    expect((await run({ study: 'st', series: 'se' }, including, 'series')).size).toBe(18);
    expect((await run({ study: 'st' }, including, 'study')).size).toBe(18);
    const asked = newCaller({ sub: 'rule-test', roles: ['admin'], clearances: [] }, { protocol: 'cli', command: 'rule test' });
    expect((await run({ study: 'st' }, asked, 'study')).size).toBe(12);
  });

  it('checks liveness on the rows below a checked one too (the counts)', async () => {
    const caller = callerWith([]);
    const r = await a.deps.db.raw(`${query()} ?`, [visible(a.deps.db, { study: 'st', series: 'se', instance: 'i', checked: 'series' }, caller)]);
    expect(r.rows.every((x: { i: string }) => x.i === 'live')).toBe(true);
    const s = await a.deps.db.raw(`${query()} ?`, [visible(a.deps.db, { study: 'st', series: 'se', checked: 'study' }, caller)]);
    expect(s.rows.some((x: { se: string }) => x.se === 'hinted-dead')).toBe(false);
  });
});
