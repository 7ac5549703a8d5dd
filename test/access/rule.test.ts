import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller, visibilityValues, visible, visibleText, type Caller, type IndexPath } from '../../server/access.js';
import { prepared } from '../../server/db/knex.js';
import { createTestArchive, type TestArchive } from '../helpers.js';

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
const ROWS = `with st(id, labels) as (values ${LABEL_SETS.map((l, i) => `(${i}, ${arrayLiteral(l)})`).join(', ')}),
  se(id, labels) as (values ${LABEL_SETS.map((l, i) => `(${i}, ${arrayLiteral(l)})`).join(', ')}),
  i(id) as (values (0))
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
    expect(visibleText({ study: 's', series: 'se' }, 4)).toMatch(/\$4\b.*\$5\b/);
    expect(visibleText({ study: 's', series: 'se' }, 4)).not.toMatch(/\$[0-36-9]/);
  });

  it('refuses a table alias that is not a plain name, rather than splice it', () => {
    expect(() => visible(a.deps.db, { study: 's; drop table studies' }, callerWith([]))).toThrow(/alias/);
    expect(() => visibleText({ study: 'st', series: 'se', instance: 'i"' }, 1)).toThrow(/alias/);
  });
});
