import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCaller } from '../../server/access.js';
import { Deidentifier, shiftDate } from '../../server/deid/profile.js';
import { searchQuery } from '../../server/db/search.js';
import { Tag } from '../../server/dicom/tags.js';
import { createTestArchive, type TestArchive } from '../helpers.js';

// The index computes each patient's date shift in SQL (server/db/search.ts)
// the way the view computes it in TypeScript (Deidentifier.shiftDays): the
// two must agree for every patient, or a shifted-date query would miss.

let a: TestArchive;
beforeAll(async () => {
  a = await createTestArchive();
});
afterAll(async () => {
  await a?.close();
});

describe('the date shift in SQL', () => {
  it('is the shift the view applies, for patients known by ID, by name alone, and with non-ASCII text', async () => {
    const patients: [string | null, string | null][] = [
      ['PAT-A', 'Alpha^Ann'],
      ['1CT1', null],
      ['', 'Nameonly^Nora'],
      [null, 'Müller^Jörg=山田^太郎'],
      [null, null],
      ['Ünïcødé-ID', 'x'],
      ...Array.from({ length: 40 }, (_, i) => [`ID-${i * 7919}`, null] as [string, null]),
    ];
    for (const key of [Buffer.from('project-one-key-0123456789abcdef'), Buffer.alloc(80, 7)]) {
      const d = new Deidentifier(key, { retainLongitudinal: 'modified' });
      const k = d.shiftKey();
      // The shift expression of a shifted-date match, alone: the stored date 9999-12-31 minus the shift, over literal patient rows.
      const caller = newCaller({ sub: 'r', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' });
      const sql = searchQuery(a.deps.db, caller, {
        level: 'study',
        matches: [{ tag: Tag.StudyDate, cond: { op: 'shifted', key: k } }],
        scope: {},
        limit: 1,
        offset: 0,
        load: { study: false, studyCounts: false, series: false, seriesCount: false, metadata: false },
      }).toSQL().sql;
      const shiftSql = /- (\(1 \+ .*?::int)/s.exec(sql)?.[1] ?? '';
      expect(shiftSql).toContain('sha256');
      for (const [id, name] of patients) {
        const attrs: Record<string, { vr: string; Value?: unknown[] }> = {};
        if (id !== null) attrs['00100020'] = { vr: 'LO', Value: [id] };
        if (name !== null) {
          const [alphabetic, ideographic] = name.split('=');
          attrs['00100010'] = { vr: 'PN', Value: [{ Alphabetic: alphabetic, ...(ideographic ? { Ideographic: ideographic } : {}) }] };
        }
        const { rows } = await a.deps.db.raw(
          `select ${shiftSql.replaceAll('"', '')} as days from (select ?::text as patient_id, ?::text as patient_name) as s`,
          [k.outer, k.inner, k.span, id, name],
        );
        expect(rows[0].days, `${id} / ${name}`).toBe(d.shiftDays(attrs));
      }
    }
  });

  it('matches a stored date exactly when the view shows one: calendar dates of years 0001–9999 that do not move before year 1', async () => {
    const d = new Deidentifier(Buffer.from('project-one-key-0123456789abcdef'), { retainLongitudinal: 'modified' });
    const key = d.shiftKey();
    const caller = newCaller({ sub: 'r', roles: ['researcher'], clearances: [] }, { protocol: 'cli', command: 'test' });
    const q = searchQuery(a.deps.db, caller, {
      level: 'study',
      matches: [{ tag: Tag.StudyDate, cond: { op: 'shifted', key } }],
      scope: {},
      limit: 1,
      offset: 0,
      load: { study: false, studyCounts: false, series: false, seriesCount: false, metadata: false },
    }).toSQL();
    const exists = /exists \(select 1 from \(select [\s\S]*?between \?::date and \?::date\)/.exec(q.sql)?.[0] ?? '';
    const bindings = q.bindings.slice(q.bindings.indexOf(key.outer), q.bindings.indexOf(key.outer) + 5);
    const days = d.shiftDays({ '00100020': { vr: 'LO', Value: ['PAT-1'] } });
    const values = [
      '20240229',
      '20230229',
      '19000229',
      '20000229',
      '21000229',
      '20231131',
      '20231231',
      '20231301',
      '20230100',
      '00000101',
      '99991231',
      '2023-01-01',
      '2023010',
      '202301011',
      '',
      'abcdefgh',
      '0001' + '0101',
      `0001${'0'}1${String(days).padStart(2, '0').slice(-2)}`,
    ];
    for (const v of values) {
      const { rows } = await a.deps.db.raw(
        `select ${exists.replaceAll('"', '')} as hit from (select 'PAT-1'::text as patient_id, null::text as patient_name, ?::text as study_date) as s`,
        [...bindings, v],
      );
      expect(rows[0].hit, v).toBe(shiftDate(v, days) !== null);
    }
  });
});
